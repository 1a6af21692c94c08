"""A connection-level black hole on loopback, for connect-timeout tests.

A listening socket that never accepts, with its accept queue filled by our own
connections: the kernel then drops further SYNs, so a client's connect() hangs in
SYN_SENT until its CONNECT timeout fires. That is what an unreachable host looks
like, which a server that accepts and never answers (a read hang) does not show.
"""

from __future__ import annotations

import select
import socket

_LOOPBACK = "127.0.0.1"  # never any other address


class BlackHole:
    """Context manager exposing `.port` and `.url` of a loopback address that never connects."""

    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._fillers: list[socket.socket] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{_LOOPBACK}:{self.port}"

    def open(self) -> BlackHole:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((_LOOPBACK, 0))
        listener.listen(0)
        self._listener, self.port = listener, listener.getsockname()[1]
        # Connect until a handshake no longer completes: the accept queue is then full.
        for _ in range(256):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex((_LOOPBACK, self.port))
            self._fillers.append(filler)
            _, writable, _ = select.select([], [filler], [], 0.2)
            if not writable:
                return self
        self.close()
        raise RuntimeError("could not fill the accept queue of the black hole")

    def close(self) -> None:
        for sock in [*self._fillers, *([self._listener] if self._listener else [])]:
            sock.close()
        self._fillers, self._listener = [], None

    def __enter__(self) -> BlackHole:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
