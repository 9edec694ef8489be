"""A hostile HTTP server for the tests: it stands in front of a FakeHubSpot, forwards each
request to it, and spoils the answers it is told to spoil, the way proxies, load balancers and
broken networks do (a body cut short, a chunked body never finished, a reset after part of the
body, headers no one should send, an error page that lists the request's headers).

It speaks just enough HTTP/1.1 for the client under test (requests with ``Content-Length``) and
knows nothing of HubSpot; what to spoil is decided per answer by a function of the answer's
number, so each test says exactly which answers go wrong.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Answer:
    """An answer as it came from upstream, to be changed before it is sent on."""

    status: int
    headers: dict[str, str]
    body: bytes
    #: How to send it: "whole", "short" (Content-Length says more than is sent, then the
    #: connection closes), "unfinished" (chunked, the last chunk never comes), "reset" (part of
    #: the body, then a TCP reset).
    how: str = "whole"
    #: Request headers, for pages that echo them.
    request_headers: dict[str, str] = field(default_factory=dict)


#: Decides the fate of answer number ``n`` (from 0), changing it in place.
Spoiler = Callable[[int, Answer], None]


class HostileProxy:
    def __init__(self, upstream: str, spoil: Spoiler) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._spoil = spoil
        self._lock = threading.Lock()
        self.answers = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> HostileProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=60)
        rfile = conn.makefile("rb")
        try:
            while self._one(conn, rfile, upstream):
                pass
        except OSError:
            pass
        finally:
            upstream.close()
            conn.close()

    def _one(
        self, conn: socket.socket, rfile: object, upstream: http.client.HTTPConnection
    ) -> bool:
        line = rfile.readline(65537)  # type: ignore[attr-defined]
        if not line.strip():
            return False
        method, target, _ = line.decode("latin-1").split()
        headers: dict[str, str] = {}
        while (h := rfile.readline(65537)) not in (b"\r\n", b"\n", b""):  # type: ignore[attr-defined]
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip()] = value.strip()
        length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
        body = rfile.read(length) if length else b""  # type: ignore[attr-defined]
        forward = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        upstream.request(method, target, body=body, headers=forward)
        got = upstream.getresponse()
        answer = Answer(
            got.status,
            {
                k: v
                for k, v in got.getheaders()
                if k.lower() not in ("content-length", "connection")
            },
            got.read(),
            request_headers=headers,
        )
        with self._lock:
            n = self.answers
            self.answers += 1
        self._spoil(n, answer)
        return _send(conn, answer)


def _send(conn: socket.socket, answer: Answer) -> bool:
    head = f"HTTP/1.1 {answer.status} X\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in answer.headers.items()
    )
    body = answer.body
    if answer.how == "whole":
        conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + body)
        return True
    half = body[: len(body) // 2]
    if answer.how == "short":
        conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + half)
        conn.shutdown(socket.SHUT_RDWR)
    elif answer.how == "unfinished":
        chunk = f"{len(half):x}\r\n".encode() + half + b"\r\n"
        conn.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode("latin-1") + chunk)
        conn.shutdown(socket.SHUT_RDWR)
    elif answer.how == "reset":
        conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1") + half)
        # SO_LINGER with a zero timeout: close() sends a reset, not a FIN.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        raise ValueError(answer.how)
    return False
