"""Ray nodes started on this machine by the benchmarks and the tests: free ports, and a stop
that ends only the processes one harness started.

Every process a harness starts carries a marker variable in its environment (inherited by
everything it starts in turn), so stopping it never touches another Ray on the machine (no
`ray stop`, which stops them all).
"""

from __future__ import annotations

import contextlib
import importlib
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["BIN", "free_ports", "psutil_module", "stop_marked"]

BIN = Path(sys.executable).parent


def free_ports(count: int) -> list[int]:
    """`count` distinct ports on 127.0.0.1 that nothing listens on right now."""
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def psutil_module() -> Any:
    """psutil as Ray bundles it (importing ray puts it on sys.path)."""
    import ray  # noqa: F401

    return importlib.import_module("psutil")


def stop_marked(marker: str, root: Path) -> None:
    """Ends every process whose environment has `marker` set to `root` (the nodes a harness
    started, and everything they started): SIGTERM, then SIGKILL."""
    psutil = psutil_module()
    procs = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(marker) == str(root):
                procs.append(proc)
        except (psutil.Error, OSError):
            continue
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=3)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
