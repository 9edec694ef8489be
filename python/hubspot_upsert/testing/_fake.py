"""FakeHubSpot: a real HTTP/1.1 server on loopback that answers like HubSpot's contact API.

It keeps contacts in memory, checks the token and the property values as HubSpot does, and
answers with HubSpot's documented bodies and headers. Tests (and users' own test suites) read
back what it stored and every request it received, raw path included.

The parts, in the order a request meets them: ``_server.py`` (sockets and HTTP/1.1),
``_portal.py`` (the portal: limits, tokens, routes, contacts), ``_rules.py`` (what HubSpot
accepts), ``_answers.py`` (what it answers), ``_records.py`` (what the fake reports).
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from ._portal import Portal
from ._rules import STANDARD_PROPERTIES, PropertyType
from ._server import HttpServer


class FakeHubSpot(Portal):
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

    ``latency`` is the time HubSpot takes to answer a request that writes or reads records
    (every method but GET: batch upserts, reads, archives, associations, single upserts), after
    it has counted it against the limits, as HubSpot counts a request when it arrives; light
    reads (the property definitions, the account details, owners and labels: GETs) answer
    without it. ``network_latency`` is the network's round trip, for every request: half of it
    before the request arrives (and is counted), half after it is answered.

    ``keepalive_timeout`` closes a connection that stays idle that long (HubSpot's load
    balancers do). ``ssl_context`` (a server-side
    ``ssl.SSLContext``) serves HTTPS. ``conflict_style`` picks the 409 body: ``"new"`` (with
    ``category`` and ``errors``) or ``"old"``. ``record_requests=False`` keeps no copy of the
    requests (for long benchmark runs). Faults are scripted with :meth:`script`.

    Like HubSpot, a rejected batch names only its first bad input (``name_all_errors=True``
    names them all); batch results echo only the properties written, ``hs_object_id``,
    ``createdate``, ``lastmodifieddate`` and the input's ``objectWriteTraceId`` (which HubSpot's
    spec marks optional: ``update_trace_ids=False`` leaves it out of batch update results, each
    then named by its ``id`` only); writes to those
    read-only properties are refused (``READ_ONLY_VALUE``); addresses need a real top-level
    domain. ``GET /crm/v3/properties/contacts`` lists the property definitions, or answers 403
    ``MISSING_SCOPES`` with ``properties_scope=False`` (a token without
    ``crm.schemas.contacts.read``). Rate limits count a request when it arrives; HubSpot does
    not promise ``Retry-After`` on a 429, ``retry_after`` (seconds) sends one.

    ``unique_properties`` are string properties whose definitions say ``hasUniqueValue``: no
    two contacts share a value, and batch upserts, updates and reads may match records on
    them (``idProperty``); contacts created by them need no address. Matching on any other
    property is refused as HubSpot does ("Unable to perform update/upsert by non-unique 0-1
    property"). Batch update and read also address contacts by ``hs_object_id`` (their id).

    OAuth: ``oauth_clients`` (client id to secret) may use HubSpot's token endpoint
    (``POST /oauth/2026-03/token``, a form, refusing with RFC 6749's ``error`` and
    ``error_description``; v1's ``/oauth/v1/token`` too, refusing with ``status`` and
    ``message``) with ``refresh_tokens`` (or the refresh token an
    :meth:`authorization_code` grant gives); each grant answers an access token that expires
    after ``token_life`` seconds (401 ``EXPIRED_AUTHENTICATION`` after that).
    :meth:`revoke` refuses a refresh token from then on, :meth:`expire_access_tokens` expires
    every access token given, :attr:`token_grants` counts them.

    ``GET /account-info/v3/details`` (and its date versions) answers the account's details,
    ``portalId`` among them (``portal_id``).

    Besides contacts it serves companies, deals and tickets (with a stock portal's properties)
    and custom objects, on the same paths with the object's name or type id: ``objects`` adds
    to them, by name (``{"companies": {"unique": ["crm_id"], "properties": {...}}}``) or by a
    custom object's type id (``{"2-123456": {"name": "cars", "properties": {"vin":
    "string"}, "unique": ["vin"]}}``). An object type the portal lacks answers 400 ("Unable to
    infer object type from: ..."). :meth:`records` and :meth:`record` show what is stored.

    Associations: HubSpot's default association between records of two object types, made
    100 per request (``POST /crm/associations/2026-09/{from}/{to}/batch/associate/default``,
    the other date versions, or ``/crm/v4/associations/...``) and read back
    (``.../batch/read``); labelled ones (``.../batch/create``, each input's ``types``); removed
    (``.../batch/archive``, 204); and the pair's labels listed (``GET .../labels``: the plain
    type, HubSpot's "Primary" for contacts and deals to companies, and the portal's own,
    ``association_labels={"contacts/deals": ["Decision maker"]}``, ``USER_DEFINED``).
    Standard objects associate with each other, a custom object only with the types its spec
    lists (``"associations": ["contacts"]``), others answering 400 as HubSpot does. Records
    that do not exist are refused per input. ``edit_associations=False`` is a portal whose
    validation rule refuses association writes (a 400 with no code: "Missing 'Edit
    Associations' permission"). :meth:`associations` shows what is stored,
    :meth:`association_types` the labels of each.
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
        network_latency: float = 0.0,
        keepalive_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        conflict_style: str = "new",
        first_vid: int = 1001,
        record_requests: bool = True,
        name_all_errors: bool = False,
        properties_scope: bool = True,
        retry_after: float | None = None,
        owners: Iterable[str | int] = ("101", "102", "103"),
        partial_answers: bool = False,
        required_on_create: Iterable[str] = (),
        unique_properties: Iterable[str] = (),
        oauth_clients: Mapping[str, str] | None = None,
        refresh_tokens: Iterable[str] = (),
        token_life: float = 1800.0,
        conditional_rules: Iterable[tuple[str, str, str]] = (),
        portal_id: int = 24681357,
        objects: Mapping[str, Mapping[str, Any]] | None = None,
        edit_associations: bool = True,
        association_labels: Mapping[str, Iterable[str]] | None = None,
        update_trace_ids: bool = True,
    ) -> None:
        if conflict_style not in ("new", "old"):
            raise ValueError(f"conflict_style must be 'new' or 'old', got {conflict_style!r}")
        self.token = token or f"pat-na1-fake-{uuid.uuid4()}"
        self.strict_properties = strict_properties
        self._expired = frozenset(expired_tokens)
        self._readonly = frozenset(readonly_tokens)
        self._new_conflicts = conflict_style == "new"
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.daily_limit = daily_limit
        self.latency = latency
        self.network_latency = network_latency
        self._first_vid = first_vid
        self._record = record_requests
        self.name_all_errors = name_all_errors
        self.properties_scope = properties_scope
        self.retry_after = retry_after
        self.owners = frozenset(str(o) for o in owners)
        self.partial_answers = partial_answers
        self.edit_associations = edit_associations
        self.association_labels = {k: tuple(v) for k, v in (association_labels or {}).items()}
        self.update_trace_ids = update_trace_ids
        self.required_on_create = tuple(required_on_create)
        self.conditional_rules = tuple(tuple(r) for r in conditional_rules)  # type: ignore[misc]
        schema = dict(STANDARD_PROPERTIES if properties is None else properties)
        schema = {**schema, **(extra_properties or {})}
        self.unique_properties = frozenset(unique_properties)
        self.oauth_clients = dict(oauth_clients or {})
        self._initial_refresh_tokens = frozenset(refresh_tokens)
        self.token_life = token_life
        self.portal_id = portal_id
        for name in self.unique_properties:
            if schema.setdefault(name, "string") != "string":
                raise ValueError(f"unique property {name!r} must be a string property")
        self._open(schema, objects)
        self._server = HttpServer(
            self._handle,
            host=host,
            port=port,
            ssl_context=ssl_context,
            keepalive_timeout=keepalive_timeout,
        )

    def start(self) -> FakeHubSpot:
        """Start serving in background threads; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        self._server.stop()

    def __enter__(self) -> FakeHubSpot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL to give the client, e.g. ``http://127.0.0.1:54321``."""
        return self._server.url

    @property
    def connections_opened(self) -> int:
        """How many TCP connections clients opened (a pooled client opens few)."""
        return self._server.connections_opened
