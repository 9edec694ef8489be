"""FakeHubSpot: a real HTTP/1.1 server on loopback that answers like HubSpot's contact API.

It keeps contacts in memory, checks the token and the property values as HubSpot does, and
answers with HubSpot's documented bodies and headers. Tests (and users' own test suites) read
back what it stored and every request it received, raw path included.

The server is plain threads and sockets: one thread accepts, one thread serves each keep-alive
connection. It is small on purpose, and fast enough (thousands of requests a second) not to be
the bottleneck of the client it tests.
"""

from __future__ import annotations

import collections
import itertools
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

V1_UPSERT_PREFIX = "/contacts/v1/contact/createOrUpdate/email/"
#: HubSpot's date versions the fake serves; other dates answer 404, as HubSpot does.
API_VERSIONS = ("2026-03", "2026-09")
# v3, and HubSpot's date-versioned successor of the same shape (/crm/objects/2026-03/...).
_V3_BATCH_PATH = re.compile(
    r"/crm/(?:v3/objects|objects/(?P<date>\d{4}-\d{2}))/contacts/batch/upsert/?\Z"
)
V3_BATCH_MAX = 100
_PROPERTIES_PATH = re.compile(
    r"/crm/(?:v3/properties|properties/(?P<date>\d{4}-\d{2}))/contacts/?\Z"
)

#: Properties HubSpot sets itself: every portal has them, and writes to them are refused.
READ_ONLY_PROPERTIES: Mapping[str, str] = {
    "hs_object_id": "number",
    "createdate": "datetime",
    "lastmodifieddate": "datetime",
}

#: A property type: "string", "number", "bool", "date", "datetime", or a sequence of the
#: allowed option values of an enumeration (several may be sent joined with ";").
PropertyType = str | Sequence[str]

#: The contact properties every fake portal has (a subset of HubSpot's standard ones).
STANDARD_PROPERTIES: Mapping[str, PropertyType] = {
    "email": "string",
    "firstname": "string",
    "lastname": "string",
    "salutation": "string",
    "phone": "string",
    "mobilephone": "string",
    "fax": "string",
    "company": "string",
    "website": "string",
    "jobtitle": "string",
    "industry": "string",
    "address": "string",
    "city": "string",
    "state": "string",
    "zip": "string",
    "country": "string",
    "message": "string",
    "date_of_birth": "string",
    "annualrevenue": "number",
    "closedate": "datetime",
    "lifecyclestage": (
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ),
    "hs_lead_status": (
        "NEW",
        "OPEN",
        "IN_PROGRESS",
        "OPEN_DEAL",
        "UNQUALIFIED",
        "ATTEMPTED_TO_CONTACT",
        "CONNECTED",
        "BAD_TIMING",
    ),
}

_TYPES = {"string", "number", "bool", "date", "datetime"}
_NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")
_INTEGER = re.compile(r"-?\d+\Z")
# HubSpot's check, roughly: no quoted local part, no white space, a domain ending in a real
# top-level domain (IDN domains and TLDs included).
_EMAIL = re.compile(
    r'[^@\s"(),:;<>\[\]\\]+@(?:[^\W_](?:[\w-]*[^\W_])?\.)+([^\W\d_]{2,}|xn--[a-z0-9-]+)\Z'
)
# The country-code TLDs (ISO 3166) and the generic ones in common use.
_TLDS = frozenset(
    """
    ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs
    bt bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee
    eg er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk
    hm hn hr ht hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la
    lb lc li lk lr ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my
    mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro
    rs ru rw sa sb sc sd se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk
    tl tm tn to tr tt tv tw tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw
    com org net edu gov mil int info biz name pro mobi aero coop museum jobs travel cat tel asia
    app dev page io ai cloud online site store tech blog shop xyz top club live news email
    agency digital solutions company services global world media group network systems support
    academy energy finance health law legal marketing software studio design art example test
    """.split()
)
_DAY_MS = 86_400_000
_MAX_BODY = 10 * 1024 * 1024


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the fake received it. ``path`` is the raw request target, query included;
    ``headers`` has lower-case names."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int = 0
    #: ``time.monotonic()`` when the request was read.
    received_at: float = 0.0

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class ScriptedResponse:
    """An answer for :meth:`FakeHubSpot.script` to give instead of the normal one.

    ``body`` is sent as JSON when it is a dict or list, as it is when ``bytes`` or ``str``
    (say, an HTML error page); ``content_type`` says what it is. ``delay`` holds the answer
    back that many seconds; ``disconnect=True`` closes the connection halfway through the
    answer instead of finishing it.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=utf-8"
    delay: float = 0.0
    disconnect: bool = False


@dataclass(frozen=True)
class StoredContact:
    """A contact as the fake stores it: every property value is a string."""

    vid: int
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def email(self) -> str:
        return self.properties.get("email", "")


class _Contact:
    __slots__ = ("properties", "vid")

    def __init__(self, vid: int, properties: dict[str, str]) -> None:
        self.vid = vid
        self.properties = properties


class _Reply(Exception):
    """An answer; raised inside a handler to answer at once."""

    def __init__(
        self,
        status: int,
        body: Any,
        headers: Mapping[str, str] | None = None,
        *,
        delay: float = 0.0,
        disconnect: bool = False,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.delay = delay
        self.disconnect = disconnect


def _valid_email(address: str) -> bool:
    match = _EMAIL.match(address)
    if match is None:
        return False
    tld = match.group(1)
    return tld.lower() in _TLDS or not tld.isascii() or tld.startswith("xn--")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _error_body(message: str, correlation_id: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": correlation_id, **extra}


def _v3_error(
    message: str, correlation_id: str, *, category: str = "VALIDATION_ERROR", **extra: Any
) -> dict[str, Any]:
    return _error_body(message, correlation_id, category=category, **extra)


def _missing_scope(scope: str, correlation_id: str) -> _Reply:
    """HubSpot's 403 for a token without ``scope``."""
    return _Reply(
        403,
        _error_body(
            "This app hasn't been granted all required scopes to make this call.",
            correlation_id,
            category="MISSING_SCOPES",
            errors=[
                {
                    "message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": [scope]},
                }
            ],
        ),
    )


def _iso(millis: int) -> str:
    seconds, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def _iso_now() -> str:
    return _iso(int(time.time() * 1000))


class FakeHubSpot:
    """A fake HubSpot on ``127.0.0.1`` and a free port, for tests and rehearsals.

    Use it as a context manager (or call :meth:`start` and :meth:`stop`)::

        with FakeHubSpot() as fake:
            hs = HubSpot(fake.token, base_url=fake.url)

    ``token`` is the one valid token (a random one by default); ``expired_tokens`` answer 401
    ``EXPIRED_AUTHENTICATION`` and ``readonly_tokens`` 403 ``MISSING_SCOPES``.
    ``properties`` replaces the portal's property definitions (:data:`STANDARD_PROPERTIES` by
    default); ``extra_properties`` adds to them. Unknown properties are refused with
    ``PROPERTY_DOESNT_EXIST`` (unless ``strict_properties=False``, which takes any name as a
    string property), values that do not fit the type with HubSpot's codes.

    ``rate_limit`` (requests per ``rate_window`` seconds, rolling) and ``daily_limit`` turn on
    HubSpot's rate limiting: its ``X-HubSpot-RateLimit-*`` headers on every answer and 429s past
    the limit. Without them the fake is unlimited and sends no rate-limit headers.

    ``latency`` delays every answer (seconds). ``keepalive_timeout`` closes a connection that
    stays idle that long (HubSpot's load balancers do). ``ssl_context`` (a server-side
    ``ssl.SSLContext``) serves HTTPS. ``conflict_style`` picks the 409 body: ``"new"`` (with
    ``category`` and ``errors``) or ``"old"``. ``record_requests=False`` keeps no copy of the
    requests (for long benchmark runs). Faults are scripted with :meth:`script`.

    Like HubSpot, a rejected batch names only its first bad input (``name_all_errors=True``
    names them all); batch results echo only the properties written, ``hs_object_id``,
    ``createdate``, ``lastmodifieddate`` and the input's ``objectWriteTraceId``; writes to those
    read-only properties are refused (``READ_ONLY_VALUE``); addresses need a real top-level
    domain. ``GET /crm/v3/properties/contacts`` lists the property definitions, or answers 403
    ``MISSING_SCOPES`` with ``properties_scope=False`` (a token without
    ``crm.schemas.contacts.read``). Rate limits count a request when it arrives; HubSpot does
    not promise ``Retry-After`` on a 429, ``retry_after`` (seconds) sends one.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        properties: Mapping[str, PropertyType] | None = None,
        extra_properties: Mapping[str, PropertyType] | None = None,
        strict_properties: bool = True,
        expired_tokens: Iterable[str] = (),
        readonly_tokens: Iterable[str] = (),
        rate_limit: int | None = None,
        rate_window: float = 10.0,
        daily_limit: int | None = None,
        latency: float = 0.0,
        keepalive_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        conflict_style: str = "new",
        first_vid: int = 1001,
        record_requests: bool = True,
        name_all_errors: bool = False,
        properties_scope: bool = True,
        retry_after: float | None = None,
    ) -> None:
        self.token = token or f"pat-na1-fake-{uuid.uuid4()}"
        self._host = host
        self._port = port
        self._schema: dict[str, PropertyType] = {"email": "string"}
        self.add_properties(STANDARD_PROPERTIES if properties is None else properties)
        self.add_properties(extra_properties or {})
        self.strict_properties = strict_properties
        self._initial_schema = (dict(self._schema), strict_properties)
        self._expired = frozenset(expired_tokens)
        self._readonly = frozenset(readonly_tokens)
        if conflict_style not in ("new", "old"):
            raise ValueError(f"conflict_style must be 'new' or 'old', got {conflict_style!r}")
        self._conflict_style = conflict_style
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.daily_limit = daily_limit
        self.latency = latency
        self.keepalive_timeout = keepalive_timeout
        self._ssl_context = ssl_context
        self._first_vid = first_vid
        self._record = record_requests
        self.name_all_errors = name_all_errors
        self.properties_scope = properties_scope
        self.retry_after = retry_after

        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._reset_state()

    # -- lifecycle ------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._contacts: dict[str, _Contact] = {}
        self._vids = itertools.count(self._first_vid)
        self._requests: list[ReceivedRequest] = []
        self._request_count = 0
        self._status_counts: collections.Counter[int] = collections.Counter()
        self._scripted: collections.deque[ScriptedResponse] = collections.deque()
        self._connections_opened = 0
        self._window: collections.deque[float] = collections.deque()
        self._daily_used = 0
        self._in_flight = 0
        self._peak_in_flight = 0

    def start(self) -> FakeHubSpot:
        """Start serving in background threads; returns self."""
        if self._listener is not None:
            return self
        listener = socket.create_server((self._host, self._port), backlog=128)
        self._listener = listener
        self._stopping.clear()
        thread = threading.Thread(target=self._accept_loop, name="FakeHubSpot-accept", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
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

    def __enter__(self) -> FakeHubSpot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_properties(self, properties: Mapping[str, PropertyType]) -> None:
        """Define more contact properties (name to type, as ``extra_properties``)."""
        for name, kind in properties.items():
            if isinstance(kind, str) and kind not in _TYPES:
                raise ValueError(
                    f"property {name!r}: unknown type {kind!r} "
                    f"(use one of {sorted(_TYPES)} or a list of options)"
                )
        self._schema.update(properties)

    def reset(self) -> None:
        """Back to how it was created: no contacts, requests, counters or scripted answers,
        and the properties it was created with (the server keeps running)."""
        with self._lock:
            self._reset_state()
            schema, strict = self._initial_schema
            self._schema = dict(schema)
            self.strict_properties = strict

    @property
    def url(self) -> str:
        """The base URL to give the client, e.g. ``http://127.0.0.1:54321``."""
        if self._listener is None:
            raise RuntimeError("the FakeHubSpot is not running: call start() or use `with`")
        host, port = self._listener.getsockname()[:2]
        scheme = "https" if self._ssl_context else "http"
        if scheme == "https" and host == "127.0.0.1":
            host = "localhost"  # certificates name hosts, rarely addresses
        return f"{scheme}://{host}:{port}"

    # -- what it saw ----------------------------------------------------------------------

    @property
    def contacts(self) -> dict[str, StoredContact]:
        """A snapshot of the stored contacts, keyed by lower-case email."""
        with self._lock:
            return {
                key: StoredContact(c.vid, dict(c.properties)) for key, c in self._contacts.items()
            }

    def contact(self, email: str) -> StoredContact | None:
        """The stored contact with this email (any case), or None."""
        with self._lock:
            c = self._contacts.get(email.lower())
            return None if c is None else StoredContact(c.vid, dict(c.properties))

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received, oldest first (empty with ``record_requests=False``)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many requests were received."""
        with self._lock:
            return self._request_count

    @property
    def status_counts(self) -> dict[int, int]:
        """How many answers had each status."""
        with self._lock:
            return dict(self._status_counts)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections clients opened (a pooled client opens few)."""
        with self._lock:
            return self._connections_opened

    def script(self, *responses: ScriptedResponse) -> None:
        """Answer the next requests with these responses, in order, whatever they ask; then
        behave normally again. Scripted requests are recorded and counted as usual."""
        with self._lock:
            self._scripted.extend(responses)

    @property
    def peak_in_flight(self) -> int:
        """The most requests that were being handled at the same moment."""
        with self._lock:
            return self._peak_in_flight

    # -- the server -----------------------------------------------------------------------

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
                self._connections_opened += 1
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
        line = rfile.readline(65537)
        while line in (b"\r\n", b"\n"):
            line = rfile.readline(65537)
        if not line:
            return False
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._send(conn, 400, _error_body("malformed request line", ""), {}, True)
            return False
        method, target, version = parts
        headers: dict[str, str] = {}
        while True:
            h = rfile.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked(rfile)
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self._send(conn, 411, _error_body("bad Content-Length", ""), {}, True)
                return False
            if length > _MAX_BODY:
                self._send(conn, 413, _error_body("body too large", ""), {}, True)
                return False
            body = rfile.read(length) if length else b""
        if body is None:
            return False

        received_at = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            # HubSpot counts a request against its limits when it arrives, not when it answers.
            self._request_count += 1
            admitted = (
                self._count_against_limits(),
                (self._scripted.popleft() if self._scripted else None),
            )
        try:
            if self.latency:
                time.sleep(self.latency)
            reply = self._respond(method, target, headers, body, received_at, admitted)
            if reply.delay:
                time.sleep(reply.delay)
        finally:
            with self._lock:
                self._in_flight -= 1
        if reply.disconnect:
            conn.sendall(f"HTTP/1.1 {reply.status} {_reason(reply.status)}\r\nContent-Le".encode())
            conn.shutdown(socket.SHUT_RDWR)
            return False
        self._send(conn, reply.status, reply.body, reply.headers, close)
        return not close

    @staticmethod
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
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                return None
            chunks.append(rfile.read(size))
            rfile.readline(3)

    def _send(
        self, conn: socket.socket, status: int, payload: Any, extra: Mapping[str, str], close: bool
    ) -> None:
        extra = dict(extra)
        content_type = extra.pop("content-type", "application/json;charset=utf-8")
        if isinstance(payload, bytes):
            body = payload
        elif isinstance(payload, str):
            body = payload.encode()
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
        head = [
            f"HTTP/1.1 {status} {_reason(status)}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        head.extend(f"{k}: {v}" for k, v in extra.items())
        if close:
            head.append("Connection: close")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    # -- HubSpot's behaviour --------------------------------------------------------------

    def _respond(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        received_at: float,
        admitted: tuple[tuple[dict[str, str], str | None], ScriptedResponse | None],
    ) -> _Reply:
        correlation_id = str(uuid.uuid4())
        extra = {"x-hubspot-correlation-id": correlation_id}
        (limit_headers, over_policy), scripted = admitted
        extra.update(limit_headers)
        try:
            if scripted is not None:
                body_out = b"" if scripted.body is None else scripted.body
                raise _Reply(
                    scripted.status,
                    body_out,
                    {"content-type": scripted.content_type, **scripted.headers},
                    delay=scripted.delay,
                    disconnect=scripted.disconnect,
                )
            if over_policy is not None:
                limited = self._rate_limited(over_policy, correlation_id)
                if self.retry_after is not None and over_policy != "DAILY":
                    limited.headers["Retry-After"] = f"{self.retry_after:g}"
                raise limited
            self._check_auth(headers.get("authorization", ""), correlation_id)
            status, payload = self._route(method, target, body, correlation_id)
            reply = _Reply(status, payload)
        except _Reply as raised:
            reply = raised
        reply.headers = {**extra, **reply.headers}
        with self._lock:
            self._status_counts[reply.status] += 1
            if self._record:
                self._requests.append(
                    ReceivedRequest(method, target, dict(headers), body, reply.status, received_at)
                )
        return reply

    def _count_against_limits(self) -> tuple[dict[str, str], str | None]:
        """Counts this request in the rolling window and the day (with the lock held); returns
        the rate-limit headers and the policy it breaks, if any."""
        out: dict[str, str] = {}
        now = time.monotonic()
        window = self._window
        while window and window[0] <= now - self.rate_window:
            window.popleft()
        policy = None
        if self.daily_limit is not None and self._daily_used >= self.daily_limit:
            policy = "DAILY"
        elif self.rate_limit is not None and len(window) >= self.rate_limit:
            policy = "TEN_SECONDLY_ROLLING"
        else:
            window.append(now)
            self._daily_used += 1
        if self.rate_limit is not None:
            out["X-HubSpot-RateLimit-Max"] = str(self.rate_limit)
            out["X-HubSpot-RateLimit-Remaining"] = str(max(0, self.rate_limit - len(window)))
            out["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(int(self.rate_window * 1000))
        if self.daily_limit is not None:
            out["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            out["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(0, self.daily_limit - self._daily_used)
            )
        return out, policy

    @staticmethod
    def _rate_limited(policy: str, correlation_id: str) -> _Reply:
        text = "daily" if policy == "DAILY" else "ten_secondly_rolling"
        return _Reply(
            429,
            {
                "status": "error",
                "message": f"You have reached your {text} limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": correlation_id,
                "policyName": policy,
                "groupName": "fake-hubspot",
            },
        )

    def _check_auth(self, authorization: str, correlation_id: str) -> None:
        def unauthorized(message: str, category: str) -> _Reply:
            body = _error_body(message, correlation_id, category=category)
            return _Reply(401, body, {"x-hubspot-auth-failure": "401 Unauthorized"})

        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if (
            scheme.lower() != "bearer"
            or not token
            or (token != self.token and token not in self._expired and token not in self._readonly)
        ):
            raise unauthorized(
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
            )
        if token in self._expired:
            raise unauthorized(
                "The OAuth token used to make this call expired 1 hour(s) ago.",
                "EXPIRED_AUTHENTICATION",
            )
        if token in self._readonly:
            raise _missing_scope("crm.objects.contacts.write", correlation_id)

    def _route(self, method: str, target: str, body: bytes, correlation_id: str) -> tuple[int, Any]:
        path = target.partition("?")[0]
        if path.startswith(V1_UPSERT_PREFIX):
            segment = path[len(V1_UPSERT_PREFIX) :]
            if segment.endswith("/"):
                segment = segment[:-1]
            if segment and "/" not in segment:
                if method != "POST":
                    raise _Reply(405, _error_body(f"{method} is not allowed here", correlation_id))
                try:
                    email = unquote_to_bytes(segment).decode("utf-8")
                except UnicodeDecodeError:
                    raise _Reply(
                        400, _error_body("the email in the path is not UTF-8", correlation_id)
                    ) from None
                return self._v1_upsert(email, body, correlation_id)
        route = _V3_BATCH_PATH.match(path) or _PROPERTIES_PATH.match(path)
        if route and route.group("date") and route.group("date") not in API_VERSIONS:
            raise _Reply(404, _error_body("resource not found", correlation_id))
        if _V3_BATCH_PATH.match(path):
            if method != "POST":
                raise _Reply(405, _error_body(f"{method} is not allowed here", correlation_id))
            return self._v3_batch_upsert(body, correlation_id)
        if _PROPERTIES_PATH.match(path):
            if method != "GET":
                raise _Reply(405, _error_body(f"{method} is not allowed here", correlation_id))
            return self._properties(correlation_id)
        raise _Reply(404, _error_body("resource not found", correlation_id))

    def _parse_json(self, body: bytes, correlation_id: str) -> Any:
        try:
            return json.loads(body)
        except UnicodeDecodeError:
            message = "Invalid input JSON: not UTF-8"
            raise _Reply(400, _error_body(message, correlation_id)) from None
        except json.JSONDecodeError as e:
            raise _Reply(
                400,
                _error_body(
                    f"Invalid input JSON on line {e.lineno}, column {e.colno}: {e.msg}",
                    correlation_id,
                ),
            ) from None

    def _invalid_value(self, name: str, value: str) -> tuple[str, str] | None:
        """HubSpot's error code and message for a value that does not fit, else None."""
        kind = self._schema.get(name, "string")
        if value == "":
            return None
        if name == "email":
            if not _valid_email(value):
                return "INVALID_EMAIL", f"Email address {value} is invalid"
            return None
        if isinstance(kind, str):
            if kind == "number" and not _NUMBER.match(value):
                return "INVALID_INTEGER", f"{value} is not a valid number"
            if kind == "bool" and value not in ("true", "false"):
                return "INVALID_OPTION", f"{value} was not one of the allowed options: true, false"
            if kind in ("date", "datetime") and not _INTEGER.match(value):
                return "INVALID_DATE", f"{value} is not a valid epoch millisecond timestamp"
            if kind == "date" and int(value) % _DAY_MS:
                return "INVALID_DATE", f"{value} is not at midnight UTC"
            return None
        for option in value.removeprefix(";").split(";"):
            if option not in kind:
                return (
                    "INVALID_OPTION",
                    f"{option} was not one of the allowed options: [{', '.join(kind)}]",
                )
        return None

    def _v1_upsert(self, path_email: str, body: bytes, correlation_id: str) -> tuple[int, Any]:
        payload = self._parse_json(body, correlation_id)
        items = payload.get("properties", []) if isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise _Reply(
                400, _error_body("Invalid input JSON: expected a properties array", correlation_id)
            )
        values: dict[str, str] = {}
        for item in items:
            name = item.get("property") if isinstance(item, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if not isinstance(name, str) or isinstance(value, (dict, list)) or value is None:
                raise _Reply(
                    400,
                    _error_body(
                        f"Invalid input JSON: bad property entry {json.dumps(item)}",
                        correlation_id,
                    ),
                )
            values[name] = value if isinstance(value, str) else json.dumps(value)

        results = self._problems(path_email, values)
        if results:
            raise _Reply(
                400,
                _error_body(
                    "Property values were not valid",
                    correlation_id,
                    validationResults=[
                        {"isValid": False, "message": m, "error": code, "name": n}
                        for n, code, m in results
                    ],
                ),
            )

        key = path_email.lower()
        new_email = values.get("email", "").lower() or key
        with self._lock:
            contact = self._contacts.get(key)
            owner = self._contacts.get(new_email)
            if new_email != key and owner is not None and owner is not contact:
                raise _Reply(409, self._conflict_body(owner, correlation_id))
            contact, is_new = self._store(path_email, values)
            if new_email != key:
                del self._contacts[key]
                self._contacts[new_email] = contact
        return 200, {"vid": contact.vid, "isNew": is_new}

    def _problems(self, email: str, values: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """``(property, code, message)`` of everything HubSpot would refuse in an upsert."""
        results = []
        if not _valid_email(email):
            results.append(("email", "INVALID_EMAIL", f"Email address {email} is invalid"))
        for name, value in values.items():
            if name in READ_ONLY_PROPERTIES:
                message = f'"{name}" is a read-only property; its value cannot be set'
                results.append((name, "READ_ONLY_VALUE", message))
            elif name not in self._schema and self.strict_properties:
                results.append((name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            elif (problem := self._invalid_value(name, value)) is not None:
                results.append((name, *problem))
        return results

    def _store(self, email: str, values: Mapping[str, str]) -> tuple[_Contact, bool]:
        """Creates or updates the contact with this email (with the lock held)."""
        key = email.lower()
        contact = self._contacts.get(key)
        now = str(int(time.time() * 1000))
        is_new = contact is None
        if contact is None:
            contact = _Contact(next(self._vids), {"email": email, "createdate": now})
            self._contacts[key] = contact
        for name, value in values.items():
            if value == "":
                if name != "email":
                    contact.properties.pop(name, None)
            elif value.startswith(";") and not isinstance(self._schema.get(name, ""), str):
                old = contact.properties.get(name, "")
                contact.properties[name] = ";".join(filter(None, [old, value[1:]]))
            else:
                contact.properties[name] = value
        contact.properties["lastmodifieddate"] = now
        return contact, is_new

    def _v3_batch_upsert(self, body: bytes, correlation_id: str) -> tuple[int, Any]:
        payload = self._parse_json(body, correlation_id)
        inputs = payload.get("inputs") if isinstance(payload, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise _Reply(400, _v3_error("inputs must be a non-empty array", correlation_id))
        if len(inputs) > V3_BATCH_MAX:
            raise _Reply(
                400,
                _v3_error(
                    f"Batch input size {len(inputs)} exceeds limit {V3_BATCH_MAX}", correlation_id
                ),
            )
        parsed: list[tuple[str, dict[str, str], Any]] = []
        seen: set[str] = set()
        errors: list[dict[str, Any]] = []
        for item in inputs:
            ok = isinstance(item, dict) and isinstance(item.get("id"), str)
            props = item.get("properties", {}) if ok else None
            if not ok or item.get("idProperty") != "email" or not isinstance(props, dict):
                raise _Reply(
                    400,
                    _v3_error(
                        "each input needs a string id, idProperty 'email' and properties",
                        correlation_id,
                    ),
                )
            if any(not isinstance(v, str) for v in props.values()):
                raise _Reply(400, _v3_error("property values must be strings", correlation_id))
            email = item["id"]
            if email.lower() in seen:
                raise _Reply(
                    400,
                    _v3_error(
                        f"Duplicate IDs found in batch input: [{email}]. IDs must be unique",
                        correlation_id,
                        errors=[
                            {
                                "message": "Duplicate IDs found in batch input",
                                "code": "DUPLICATE_ID",
                                "context": {"ids": [email]},
                            }
                        ],
                    ),
                )
            seen.add(email.lower())
            parsed.append((email, dict(props), item.get("objectWriteTraceId")))
            for name, code, message in self._problems(email, props):
                errors.append(
                    {"message": message, "code": code, "context": {"propertyName": [name]}}
                )
        if errors:
            if not self.name_all_errors:
                errors = errors[:1]  # HubSpot may name only the first bad input
            legacy = [
                {
                    "isValid": False,
                    "message": e["message"],
                    "error": e["code"],
                    "name": e["context"]["propertyName"][0],
                }
                for e in errors
            ]
            raise _Reply(
                400,
                _v3_error(
                    f"Property values were not valid: {json.dumps(legacy)}",
                    correlation_id,
                    category="VALIDATION_ERROR",
                    errors=errors,
                ),
            )
        started = _iso_now()
        results = []
        with self._lock:
            for email, props, _ in parsed:
                key, new_email = email.lower(), props.get("email", email).lower()
                owner = self._contacts.get(new_email)
                if new_email != key and owner is not None and owner is not self._contacts.get(key):
                    # The batch answer's shape: the existing contact's id in the message only.
                    raise _Reply(
                        409,
                        _v3_error(
                            f"Contact already exists. Existing ID: {owner.vid}",
                            correlation_id,
                            category="CONFLICT",
                        ),
                    )
            for email, props, trace in parsed:
                contact, is_new = self._store(email, props)
                new_email = props.get("email", email).lower()
                if new_email != email.lower():
                    del self._contacts[email.lower()]
                    self._contacts[new_email] = contact
                # HubSpot echoes what was written and the properties it sets itself, no more.
                echoed = {k: contact.properties[k] for k in props if k in contact.properties}
                echoed["hs_object_id"] = str(contact.vid)
                echoed["createdate"] = _iso(int(contact.properties["createdate"]))
                echoed["lastmodifieddate"] = _iso(int(contact.properties["lastmodifieddate"]))
                result: dict[str, Any] = {
                    "id": str(contact.vid),
                    "properties": echoed,
                    "createdAt": echoed["createdate"],
                    "updatedAt": echoed["lastmodifieddate"],
                    "archived": False,
                    "new": is_new,
                }
                if trace is not None:
                    result["objectWriteTraceId"] = trace
                results.append(result)
        # HubSpot does not promise input order; neither does the fake.
        results.reverse()
        return 200, {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _iso_now(),
        }

    def _properties(self, correlation_id: str) -> tuple[int, Any]:
        """The portal's contact property definitions, as HubSpot's properties API gives them."""
        if not self.properties_scope:
            raise _missing_scope("crm.schemas.contacts.read", correlation_id)
        results = []
        with self._lock:
            schema = {**self._schema, **READ_ONLY_PROPERTIES}
        for name, kind in schema.items():
            read_only = name in READ_ONLY_PROPERTIES
            options: list[dict[str, Any]]
            if isinstance(kind, str):
                options = (
                    [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
                    if kind == "bool"
                    else []
                )
                kind_name = kind
            else:
                options = [{"label": o, "value": o, "hidden": False} for o in kind]
                kind_name = "enumeration"
            results.append(
                {
                    "name": name,
                    "label": name.replace("_", " ").title(),
                    "type": kind_name,
                    "fieldType": {"bool": "booleancheckbox", "enumeration": "select"}.get(
                        kind_name, "text"
                    ),
                    "options": options,
                    "calculated": False,
                    "hubspotDefined": name in STANDARD_PROPERTIES or read_only,
                    "modificationMetadata": {
                        "archivable": not read_only,
                        "readOnlyDefinition": read_only,
                        "readOnlyValue": read_only,
                    },
                }
            )
        return 200, {"results": results}

    def _conflict_body(self, owner: _Contact, correlation_id: str) -> dict[str, Any]:
        email = owner.properties["email"]
        now = int(time.time() * 1000)
        body: dict[str, Any] = _error_body(
            "Contact already exists",
            correlation_id,
            error="CONTACT_EXISTS",
            identityProfile={
                "vid": owner.vid,
                "identity": [
                    {"value": email, "type": "EMAIL", "timestamp": now, "isPrimary": True},
                    {"value": str(uuid.uuid4()), "type": "LEAD_GUID", "timestamp": now},
                ],
                "linkedVid": [],
                "isContact": True,
                "savedAtTimestamp": now,
            },
            requestId=str(uuid.uuid4()),
        )
        if self._conflict_style == "new":
            body["message"] = f"Contact already exists. Existing ID: {owner.vid}"
            body["category"] = "OBJECT_ALREADY_EXISTS"
            body["errors"] = [
                {
                    "message": f"A contact with email {email} already exists. "
                    f"Existing ID: {owner.vid}",
                    "in": "email",
                }
            ]
        return body
