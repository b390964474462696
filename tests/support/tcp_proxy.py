"""A TCP proxy on 127.0.0.1 that can cut the network to a server, for outage tests.

    with TcpProxy("127.0.0.1", 9000) as proxy:   # clients use proxy.endpoint instead
        proxy.cut()       # every connection is dropped: open ones and new ones
        proxy.restore()   # connections are forwarded again

While cut, the proxy still accepts connections but resets each at once, and it resets every
connection it was forwarding: clients see what a lost network or a restarting server shows
them (connection reset, an empty reply), not a slow answer.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

__all__ = ["TcpProxy"]


class TcpProxy:
    """Forwards each connection to `host:port` on a thread pair, until `cut`.

    Args:
        host: The server's address.
        port: The server's port.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        """`http://127.0.0.1:PORT`: what clients connect to instead of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._acceptor.start()
        return self

    def cut(self) -> None:
        """Drops every connection, open or new, until `restore`."""
        with self._lock:
            self._cut = True
            for sock in list(self._open):
                _reset(sock)
            self._open.clear()

    def restore(self) -> None:
        """Forwards new connections again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stops accepting and drops every connection."""
        self._closed.set()
        self.cut()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                cut = self._cut
            if cut:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                if self._cut:  # cut while connecting
                    _reset(client)
                    _reset(server)
                    continue
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copies bytes one way until either side closes; then closes both."""
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # reset by `cut`, or by either side
        with self._lock:
            for sock in (source, sink):
                if sock in self._open:
                    self._open.discard(sock)
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)  # wakes the other way's thread
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Drops `sock`: a reset (RST) where the kernel can send one rather than a clean close;
    the shutdown also wakes a thread blocked reading it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
