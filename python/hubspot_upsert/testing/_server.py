"""The fake's HTTP/1.1 server: plain threads and sockets on loopback.

One thread accepts, one thread serves each keep-alive connection. It parses requests (chunked
bodies included), hands each to a handler and writes the handler's :class:`Reply`; it knows
nothing of HubSpot. It is small on purpose, and fast enough (thousands of requests a second)
not to be the bottleneck of the client it tests.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from ._answers import Reply, error_body

_MAX_BODY = 10 * 1024 * 1024
_LINE = 65537

#: Answers one request: ``(method, target, headers, body)`` to the reply to send.
Handler = Callable[[str, str, Mapping[str, str], bytes], Reply]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class HttpServer:
    """Serves ``handler`` on ``(host, port)``; HTTPS with a server-side ``ssl_context``.

    ``keepalive_timeout`` closes a connection idle that long (HubSpot's load balancers do).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        keepalive_timeout: float | None,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self.keepalive_timeout = keepalive_timeout
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self.connections_opened = 0

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def url(self) -> str:
        if self._listener is None:
            raise RuntimeError("the FakeHubSpot is not running: call start() or use `with`")
        host, port = self._listener.getsockname()[:2]
        scheme = "https" if self._ssl_context else "http"
        if scheme == "https" and host == "127.0.0.1":
            host = "localhost"  # certificates name hosts, rarely addresses
        return f"{scheme}://{host}:{port}"

    def start(self) -> None:
        if self._listener is not None:
            return
        self._listener = socket.create_server((self._host, self._port), backlog=128)
        self._stopping.clear()
        thread = threading.Thread(target=self._accept_loop, name="FakeHubSpot-accept", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        try:
            listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        listener.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.add(conn)
                self.connections_opened += 1
            thread = threading.Thread(
                target=self._serve_connection, args=(conn,), name="FakeHubSpot-conn", daemon=True
            )
            thread.start()

    def _serve_connection(self, conn: socket.socket) -> None:
        try:
            if self._ssl_context is not None:
                conn.settimeout(10)
                tls = self._ssl_context.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._connections.discard(conn)
                    self._connections.add(tls)
                conn = tls
            conn.settimeout(self.keepalive_timeout)
            with conn, conn.makefile("rb", buffering=65536) as rfile:
                while not self._stopping.is_set():
                    if not self._serve_one(conn, rfile):
                        return
        except (OSError, ValueError):
            # A closed, reset, timed-out (keepalive_timeout) or failed TLS connection.
            return
        finally:
            with self._lock:
                self._connections.discard(conn)

    def _serve_one(self, conn: socket.socket, rfile: Any) -> bool:
        """Reads and answers one request; False when the connection is to be closed."""
        line = rfile.readline(_LINE)
        while line in (b"\r\n", b"\n"):
            line = rfile.readline(_LINE)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            _send(conn, Reply(400, error_body("malformed request line", "")), True)
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        while (h := rfile.readline(_LINE)) not in (b"\r\n", b"\n", b""):
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        body = _read_body(conn, rfile, headers)
        if body is None:
            return False
        reply = self._handler(method, target, headers, body)
        if reply.disconnect:
            conn.sendall(f"HTTP/1.1 {reply.status} {_reason(reply.status)}\r\nContent-Le".encode())
            conn.shutdown(socket.SHUT_RDWR)
            return False
        _send(conn, reply, close)
        return not close


def _read_body(conn: socket.socket, rfile: Any, headers: Mapping[str, str]) -> bytes | None:
    """The request body; None (after answering, where HTTP has an answer) when it is unusable."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(rfile)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        _send(conn, Reply(411, error_body("bad Content-Length", "")), True)
        return None
    if length > _MAX_BODY:
        _send(conn, Reply(413, error_body("body too large", "")), True)
        return None
    return rfile.read(length) if length else b""


def _read_chunked(rfile: Any) -> bytes | None:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = rfile.readline(1024)
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            return None
        if size == 0:
            while rfile.readline(_LINE) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            return None
        chunks.append(rfile.read(size))
        rfile.readline(3)


def _send(conn: socket.socket, reply: Reply, close: bool) -> None:
    extra = dict(reply.headers)
    content_type = extra.pop("content-type", "application/json;charset=utf-8")
    payload = reply.body
    if isinstance(payload, bytes):
        body = payload
    elif isinstance(payload, str):
        body = payload.encode()
    else:
        body = json.dumps(payload, separators=(",", ":")).encode()
    head = [f"HTTP/1.1 {reply.status} {_reason(reply.status)}"]
    if reply.status != 204:  # No Content: no body, and no headers that describe one
        head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    else:
        body = b""
    head.extend(f"{k}: {v}" for k, v in extra.items())
    if close:
        head.append("Connection: close")
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
