"""`tunefleet dashboard LOCATION`: a live web view of experiments, served by optuna-dashboard.

optuna-dashboard (Optuna's own web UI) runs over a read-only Optuna storage that tunefleet
fills from the Parquet results (`tunefleet.experiments.analysis.dashboard_storage`): one study per
experiment folder, refilled whenever a run rewrites its files, so the page follows a run as
it goes and shows finished ones the same way. It binds 127.0.0.1 unless told otherwise; the
page has no authentication.

    with Dashboard("results", port=8080) as dashboard:
        print(dashboard.url)   # http://127.0.0.1:8080/dashboard
        ...

Needs the `dashboard` extra: `pip install 'tunefleet[dashboard]'`.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from tunefleet.common.errors import TunefleetError

if TYPE_CHECKING:
    from tunefleet.experiments.analysis.dashboard_storage import ResultsWatcher

__all__ = [
    "Dashboard",
    "DashboardError",
    "beside",
    "insecure_host_warning",
    "require_dashboard",
    "serve",
]

logger = logging.getLogger(__name__)


class DashboardError(TunefleetError, ValueError):
    """The dashboard cannot start; the message says why and what to do."""


def require_dashboard() -> None:
    """Raises `DashboardError` naming the extra to install if optuna-dashboard is missing."""
    try:
        import optuna_dashboard  # noqa: F401
    except ImportError:
        raise DashboardError(
            "the dashboard needs optuna-dashboard; install it with "
            "`pip install 'tunefleet[dashboard]'`."
        ) from None


def insecure_host_warning(host: str, port: int) -> str | None:
    """The warning for a host other than the loopback interface, else None."""
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return None
    return (
        f"warning: the dashboard listens on {host}:{port} and has no authentication: anyone "
        "who reaches that address reads the results; keep --host 127.0.0.1 and use an SSH "
        "tunnel to view it from another machine."
    )


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that closed its connection early: not worth a traceback."""
        logger.debug("dashboard: request from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class Dashboard:
    """optuna-dashboard over the experiments at a location, served in background threads.

    Args:
        location: An experiment folder (`<storage>/<name>`) or a storage root holding many;
            a local path or a URI (`s3://bucket/results`). It may not exist yet (a run
            about to start).
        host: The address to listen on.
        port: The port; 0 picks a free one.
        every_s: Seconds between checks for rewritten results.
    """

    def __init__(
        self, location: str, *, host: str = "127.0.0.1", port: int = 8080, every_s: float = 2.0
    ) -> None:
        if not 0 <= port <= 65535:
            raise DashboardError(
                f"port {port} is not a port number; give one from 1 to 65535 (0: any free one)."
            )
        self.location = str(location)
        self.host = host
        self.port = port
        self.every_s = every_s
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._watcher: ResultsWatcher | None = None

    @property
    def url(self) -> str:
        """The page's address (the port as bound, once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = self._server.server_address[1] if self._server is not None else self.port
        return f"http://{host}:{port}/dashboard"

    @property
    def experiments(self) -> int:
        """How many experiments the page lists now."""
        return 0 if self._watcher is None else len(self._watcher.storage.get_all_studies())

    def start(self) -> Dashboard:
        """Reads the results once, then serves the page and follows the results.

        Raises:
            DashboardError: If optuna-dashboard is missing, or the address cannot be bound.
        """
        require_dashboard()
        # Optuna, pandas and the web app load only when a dashboard starts.
        import optuna_dashboard

        from tunefleet.experiments.analysis.dashboard_storage import ResultsStorage, ResultsWatcher

        try:
            watcher = ResultsWatcher(
                self.location, ResultsStorage(refused=_forbidden), every_s=self.every_s
            )
            watcher.refresh()
        except (OSError, ValueError) as exc:  # an unknown URI scheme, an unreachable bucket
            raise DashboardError(f"{self.location}: cannot be read ({exc}).") from None
        server_class = _Server6 if ":" in self.host else _Server
        try:
            server = server_class((self.host, self.port), _Handler)
        except OSError as exc:
            raise DashboardError(
                f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc}); choose "
                "another port with --port (or --dashboard-port)."
            ) from None
        server.set_app(optuna_dashboard.wsgi(watcher.storage))
        # The page asks for importances on every load; Optuna's warnings about too few trials
        # per value would print into the terminal (or the run's progress line) each time.
        warnings.filterwarnings("ignore", category=UserWarning, module=r"optuna\.importance")
        self._server, self._watcher = server, watcher
        self._thread = threading.Thread(
            target=server.serve_forever, name="tunefleet-dashboard", daemon=True
        )
        self._thread.start()
        watcher.start()
        return self

    def stop(self) -> None:
        """Stops serving and following the results; returns when both threads ended."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        if self._watcher is not None:
            self._watcher.stop()
        self._server, self._thread, self._watcher = None, None, None

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _forbidden(message: str) -> Exception:
    """A write the results storage refuses (a note, a rename, a deletion from the page):
    optuna-dashboard answers bottle's HTTPError with its status and `{"reason": message}`,
    which the page shows; any other exception would be an internal server error."""
    # The dashboard's packages (an optional extra) load only when a dashboard starts.
    import bottle

    return bottle.HTTPError(403, message)


def _announce(dashboard: Dashboard) -> None:
    warning = insecure_host_warning(dashboard.host, dashboard.port)
    if warning:
        print(warning, file=sys.stderr)


def serve(location: str, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """`tunefleet dashboard`: serves until interrupted (Ctrl-C).

    Raises:
        DashboardError: If the location does not exist, optuna-dashboard is missing, or the
            address cannot be bound.
    """
    # pyarrow's filesystems, and the storage module that loads Optuna (the optional extra):
    # only when the dashboard is served.
    from pyarrow import fs as pafs

    from tunefleet.experiments.analysis.dashboard_storage import filesystem

    require_dashboard()
    try:
        fs, path = filesystem(location)
        missing = fs.get_file_info(path).type == pafs.FileType.NotFound
    except (OSError, ValueError) as exc:
        raise DashboardError(f"{location}: cannot be read ({exc}).") from None
    if missing:
        raise DashboardError(
            f"{location}: no such folder; give an experiment folder (<storage>/<name>) or a "
            "storage root such as ./results."
        )
    dashboard = Dashboard(location, host=host, port=port)
    _announce(dashboard)
    with dashboard:
        found = dashboard.experiments
        what = f"{found} experiment{'' if found == 1 else 's'}" if found else "no experiment yet"
        print(f"dashboard: {dashboard.url} ({what} in {location}; Ctrl-C stops it)", flush=True)
        with suppress(KeyboardInterrupt):
            threading.Event().wait()


@contextmanager
def beside(location: str, *, host: str = "127.0.0.1", port: int = 8080) -> Iterator[Dashboard]:
    """`tunefleet run --dashboard`: serves the experiment's folder while the run lasts."""
    dashboard = Dashboard(location, host=host, port=port)
    _announce(dashboard)
    with dashboard:
        print(f"dashboard: {dashboard.url} (while the run lasts)", flush=True)
        yield dashboard
