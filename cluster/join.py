"""Joins a running Ray cluster, or says within seconds, in one line, why it cannot.

Left to itself, `ray.init(address=...)` (Ray 2.60, measured here) tries an address where
nothing listens for many minutes (20 tries of about 40 s each), a port that answers but is
not Ray's for as long, and a cluster that refuses its token 20 times a second apart; on every
try Ray's C++ core writes a warning line straight to the terminal. So `join` first:

1. opens a TCP connection to the address (at most `PROBE_TIMEOUT_S`): a closed port, a host
   name that does not resolve and a firewall that drops the packets end here, before Ray
   is asked anything;
2. sends the opening bytes of HTTP/2: Ray's GCS and Ray Client server (gRPC) answer with
   HTTP/2 settings, anything else (the dashboard's port given by mistake, say) with other
   bytes, which end here too; no answer proves nothing and goes on;
3. calls `ray.init` with Ray's connect tries cut to `CONNECT_TRIES` (a refused token then ends
   in about as many seconds) and, unless verbose, with file descriptor 2 held back: what Ray
   wrote there is shown once the join worked, and dropped when it failed (the error says why).

Token authentication is Ray's: it sends the token when `RAY_AUTH_MODE=token` is set (for an
explicit address it never turns that on by itself), read from `RAY_AUTH_TOKEN`, the file
`RAY_AUTH_TOKEN_PATH` names, or `~/.ray/auth_token`. Messages name those sources, never a token.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tunefleet.cluster.errors import ClusterInputError, ClusterUnavailable
from tunefleet.common.ray_compat import auto_address, gcs_connect_tries

__all__ = [
    "CONNECT_TRIES",
    "PROBE_TIMEOUT_S",
    "Endpoint",
    "check_address",
    "endpoint",
    "join",
    "probe",
]

#: Seconds to wait for a TCP connection, and then for the first bytes of an answer.
PROBE_TIMEOUT_S = 5.0
#: Ray's tries to reach the GCS, about a second apart (Ray's default: 20).
CONNECT_TRIES = 3

# The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113, 3.4): an HTTP/2 server's
# first frame in return is SETTINGS, whose type byte is the fourth.
_HTTP2_GREETING = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_SETTINGS_FRAME = 4
_TOKEN_SOURCES = "RAY_AUTH_TOKEN, a file named by RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token"


@dataclass(frozen=True)
class Endpoint:
    """Where `ray.init(address=...)` connects.

    Attributes:
        host: Host name or IP address.
        port: TCP port.
        client: A Ray Client address (`ray://`) rather than the GCS of a cluster's head.
        shown: The address for messages, with where `auto` found it.
    """

    host: str
    port: int
    client: bool
    shown: str

    @property
    def port_role(self) -> str:
        """Which port of a cluster this should be, for messages."""
        if self.client:
            return (
                "its Ray Client port (`ray start --head --ray-client-server-port`, "
                "10001 by default)"
            )
        return "its head's GCS port (`ray start --head --port`, 6379 by default)"


def endpoint(address: str) -> Endpoint | None:
    """The host and port that `ray.init(address=address)` connects to.

    Args:
        address: `HOST:PORT`, `ray://HOST:PORT` or `auto` (Ray's `RAY_ADDRESS`, else the
            cluster the last `ray start` on this machine recorded).

    Returns:
        The endpoint, or None for `auto` when neither names one (Ray then looks for a local
        cluster itself, and says so at once if there is none).

    Raises:
        ClusterInputError: If the address is none of those forms.
    """
    text, origin = address, ""
    if address == "auto":
        found = auto_address()
        if found is None:
            return None
        text, origin = found
    scheme, _, rest = text.rpartition("://")
    host, colon, port = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")
    valid = scheme in ("", "ray") and colon and host and port.isdigit() and 0 < int(port) < 65536
    if not valid:
        if origin:
            return None  # Ray reads its own variable and file; let it say what it makes of them
        raise ClusterInputError(
            f"address: {address!r} is not a Ray cluster address; give HOST:PORT (the head's "
            "GCS port, 6379 by default), ray://HOST:PORT (Ray Client) or auto."
        )
    shown = f"{text} (from {origin})" if origin else text
    return Endpoint(host=host, port=int(port), client=scheme == "ray", shown=shown)


def check_address(address: str) -> None:
    """Steps 1 and 2 of `join` alone: milliseconds, and Ray is not asked anything.

    Raises:
        ClusterInputError: If the address is malformed.
        ClusterUnavailable: If nothing answers at the address, or something that is not Ray.
    """
    target = endpoint(address)
    if target is not None:
        probe(target)


def join(address: str, *, verbose: bool = False) -> None:
    """`ray.init(address=address)`, checked first and kept quiet (see the module docstring).

    Args:
        address: `HOST:PORT`, `ray://HOST:PORT` or `auto`.
        verbose: Show Ray's own log lines and warnings, and forward worker logs.

    Raises:
        ClusterInputError: If the address is malformed.
        ClusterUnavailable: If the cluster cannot be reached or refuses to be joined; the one
            line says what to check.
    """
    # Ray loads (about a second) only when a cluster is joined.
    import ray
    from ray.exceptions import RayError

    target = endpoint(address)
    if target is not None:
        probe(target)
    where = target.shown if target is not None else address
    level = logging.INFO if verbose else logging.ERROR
    try:
        with _held_stderr(hold=not verbose), gcs_connect_tries(CONNECT_TRIES):
            ray.init(address=address, log_to_driver=verbose, logging_level=level)
    except (ConnectionError, RuntimeError, ValueError, RayError) as exc:
        raise ClusterUnavailable(_failure(exc, where, target)) from exc


def probe(target: Endpoint) -> None:
    """Checks that something answers at `target`, and that it speaks HTTP/2 (as Ray does).

    Raises:
        ClusterUnavailable: If nothing answers, or something that is not Ray.
    """
    try:
        sock = socket.create_connection((target.host, target.port), timeout=PROBE_TIMEOUT_S)
    except socket.gaierror:
        reason = f"the host name {target.host!r} does not resolve"
    except TimeoutError:
        reason = f"no answer within {PROBE_TIMEOUT_S:g} s"
    except ConnectionRefusedError:
        reason = "connection refused: nothing listens on that port"
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        with sock:
            answer = _first_bytes(sock)
        if len(answer) == 4 and answer[3] != _SETTINGS_FRAME:
            raise ClusterUnavailable(
                f"could not join a Ray cluster at {target.shown}: port {target.port} answers, "
                f"but not as Ray does (no gRPC); give {target.port_role}, not the dashboard's "
                "(8265) or another service's."
            )
        return
    raise ClusterUnavailable(
        f"could not reach a Ray cluster at {target.shown}: {reason}; check that the cluster "
        f"is up (`ray status` on its head node), that {target.port} is {target.port_role}, "
        "and that no firewall blocks it."
    )


def _first_bytes(sock: socket.socket) -> bytes:
    """Up to 4 bytes of the answer to an HTTP/2 greeting (fewer: closed or no answer)."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return b""  # Ray speaks TLS first here: a plain greeting proves nothing
    answer = b""
    try:
        sock.settimeout(PROBE_TIMEOUT_S)
        sock.sendall(_HTTP2_GREETING)
        while len(answer) < 4:
            chunk = sock.recv(4 - len(answer))
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    return answer


@contextmanager
def _held_stderr(*, hold: bool) -> Iterator[None]:
    """Points file descriptor 2 at a temporary file for the block (Ray's C++ core writes
    there directly, past Python's logging); copies what it got to the real one if the block
    ends normally, drops it if the block raises."""
    if not hold:
        yield
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to hold
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ended = False
        try:
            yield
            ended = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if ended:
                held.seek(0)
                _write_all(2, held.read())


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _failure(exc: BaseException, where: str, target: Endpoint | None) -> str:
    """One line for a failed `ray.init`: what went wrong and what to check."""
    from ray.exceptions import AuthenticationError  # Ray is loaded: a join was tried

    prefix = f"could not join the Ray cluster at {where}"
    chain = _chain_text(exc)
    if isinstance(exc, AuthenticationError):  # raised before connecting: no token here
        path = os.environ.get("RAY_AUTH_TOKEN_PATH")
        detail = f" ({path} is missing or empty)" if path else ""
        return (
            f"{prefix}: RAY_AUTH_MODE=token is set but no token was found{detail}; give the "
            f"cluster's token in {_TOKEN_SOURCES}."
        )
    if "AuthenticationError" in chain or "Unauthenticated" in chain:
        if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
            return (
                f"{prefix}: it requires an authentication token and none was sent; set "
                f"RAY_AUTH_MODE=token and give the cluster's token in {_TOKEN_SOURCES}."
            )
        return (
            f"{prefix}: it refused the token from {_token_source()}; give the token the "
            f"cluster was started with, in {_TOKEN_SOURCES}."
        )
    if isinstance(exc, ConnectionError) and target is not None:
        if target.client:
            return (
                f"{prefix}: its Ray Client server did not accept the connection; check that "
                f"{target.port} is {target.port_role} and, if the cluster uses token "
                f"authentication, set RAY_AUTH_MODE=token and give its token in {_TOKEN_SOURCES}."
            )
        return (
            f"{prefix}: port {target.port} answers, but Ray's GCS did not; check that it is "
            f"{target.port_role}."
        )
    text = " ".join(str(exc).split())
    return f"{prefix}: {text[:300]}{'...' if len(text) > 300 else ''}"


def _chain_text(exc: BaseException) -> str:
    """The messages of an exception and of those it came from."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 10:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


def _token_source() -> str:
    """Where Ray read the token from (its order), named without the token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH ({path})"
    return "~/.ray/auth_token"
