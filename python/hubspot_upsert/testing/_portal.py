"""The fake's model of a HubSpot portal: its contacts, limits, tokens and routes.

:class:`Portal` answers one parsed request at a time (``handle``) and keeps what it saw; the
checks are in ``_rules.py``, the bodies it answers with in ``_answers.py``, the sockets in
``_server.py``.
"""

from __future__ import annotations

import collections
import re
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote_to_bytes

from . import _answers as answers
from . import _rules as rules
from ._answers import Reply
from ._contacts import ContactBook
from ._objects import ObjectKind, associated, find_kind, object_kinds, singular
from ._records import Contact, ReceivedRequest, ScriptedResponse, StoredContact
from ._rules import PropertyType

V1_UPSERT_PREFIX = "/contacts/v1/contact/createOrUpdate/email/"
#: OAuth's token endpoint: the date-versioned one, which refuses in RFC 6749's shape
#: (``error``, ``error_description``).
TOKEN_PATH = "/oauth/2026-03/token"
#: v1's token endpoint (HubSpot retires it on 2027-02-16), still served: it refuses in
#: HubSpot's own shape (``status``, ``message``).
V1_TOKEN_PATH = "/oauth/v1/token"
#: HubSpot's date versions the fake serves; other dates answer 404, as HubSpot does.
API_VERSIONS = ("2026-03", "2026-09")
# v3, and HubSpot's date-versioned successor of the same shape (/crm/objects/2026-03/...),
# which also takes the object type id (0-1: contacts).
_OBJECTS = r"/crm/(?:v3/objects|objects/(?P<date>\d{4}-\d{2}))/(?P<object>[^/]+)"
_V3_BATCH_PATH = re.compile(_OBJECTS + r"/batch/upsert/?\Z")
_V3_READ_PATH = re.compile(_OBJECTS + r"/batch/read/?\Z")
_V3_UPDATE_PATH = re.compile(_OBJECTS + r"/batch/update/?\Z")
_V3_ARCHIVE_PATH = re.compile(_OBJECTS + r"/batch/archive/?\Z")
_PROPERTIES_PATH = re.compile(
    r"/crm/(?:v3/properties|properties/(?P<date>\d{4}-\d{2}))/(?P<object>[^/]+)/?\Z"
)
_ACCOUNT_PATH = re.compile(r"/account-info/(?:v3|(?P<date>\d{4}-\d{2}))/details/?\Z")
# Associations: v4, and its date versions (the first is its latest).
_ASSOCIATIONS = (
    r"/crm/(?:v4/associations|associations/(?P<date>\d{4}-\d{2}))/(?P<object>[^/]+)/(?P<to>[^/]+)"
)
_ASSOCIATE_PATH = re.compile(_ASSOCIATIONS + r"/batch/associate/default/?\Z")
_ASSOCIATIONS_READ_PATH = re.compile(_ASSOCIATIONS + r"/batch/read/?\Z")
_ASSOCIATE_LABELLED_PATH = re.compile(_ASSOCIATIONS + r"/batch/create/?\Z")
_UNASSOCIATE_PATH = re.compile(_ASSOCIATIONS + r"/batch/archive/?\Z")
_ASSOCIATION_LABELS_PATH = re.compile(_ASSOCIATIONS + r"/labels/?\Z")
#: The association labels every portal has: HubSpot's own, by pair of object types.
HUBSPOT_LABELS = {("contacts", "companies"): {1: "Primary"}, ("deals", "companies"): {5: "Primary"}}
#: The type id of the plain association of a pair, and of custom labels from here on.
_PLAIN_TYPE, _FIRST_CUSTOM_TYPE = 279, 100
#: The first date version that enforces the portal's validation rules on writes.
RULES_FROM = "2026-09"


class Portal:
    """HubSpot's side of the conversation; :class:`FakeHubSpot` sets its options."""

    token: str
    strict_properties: bool
    rate_limit: int | None
    rate_window: float
    daily_limit: int | None
    latency: float
    network_latency: float
    name_all_errors: bool
    properties_scope: bool
    retry_after: float | None
    owners: frozenset[str]
    partial_answers: bool
    edit_associations: bool
    association_labels: dict[str, tuple[str, ...]]
    update_trace_ids: bool
    required_on_create: tuple[str, ...]
    unique_properties: frozenset[str]
    oauth_clients: dict[str, str]
    token_life: float
    portal_id: int
    _initial_refresh_tokens: frozenset[str]
    conditional_rules: tuple[tuple[str, str, str], ...]
    _expired: frozenset[str]
    _readonly: frozenset[str]
    _new_conflicts: bool
    _first_vid: int
    _record: bool

    def _open(
        self,
        schema: Mapping[str, PropertyType],
        objects: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Starts empty with these contact property definitions and object types (once the
        options are set)."""
        self._lock = threading.Lock()
        contacts = ObjectKind(
            "contacts",
            "0-1",
            {"email": "string", **schema},
            self.unique_properties,
            self._first_vid,
        )
        contacts.associates_with = frozenset(("companies", "deals", "tickets"))
        self._kinds: dict[str, ObjectKind] = {"contacts": contacts, **object_kinds(objects)}
        self._initial_strict = self.strict_properties
        self._reset_state()

    @property
    def _schema(self) -> dict[str, PropertyType]:
        return self._kinds["contacts"].schema

    @property
    def _book(self) -> ContactBook:
        return self._kinds["contacts"].book

    def _reset_state(self) -> None:
        for kind in self._kinds.values():
            kind.reset_records()
        self._requests: list[ReceivedRequest] = []
        self._request_count = 0
        self._status_counts: collections.Counter[int] = collections.Counter()
        self._scripted: collections.deque[ScriptedResponse] = collections.deque()
        self._window: collections.deque[float] = collections.deque()
        self._daily_used = 0
        self._in_flight = 0
        self._peak_in_flight = 0
        self._access_tokens: dict[str, float] = {}
        self._refresh_tokens: set[str] = set(self._initial_refresh_tokens)
        self._codes: set[str] = set()
        self._grants = 0
        # (from type, from id, to type, to id), both directions stored.
        self._associations: set[tuple[str, int, str, int]] = set()
        #: The association type ids of each association made (from the first side).
        self._association_labels: dict[tuple[str, int, str, int], set[int]] = {}

    def add_properties(
        self, properties: Mapping[str, PropertyType], object_type: str = "contacts"
    ) -> None:
        """Define more properties (name to type, as ``extra_properties``) of contacts, or of
        another object type."""
        rules.check_types(properties)
        kind = find_kind(self._kinds, object_type)
        if kind is None:
            raise ValueError(f"the fake has no object type {object_type!r}")
        kind.schema.update(properties)

    def reset(self) -> None:
        """Back to how it was created: no records, requests, counters or scripted answers,
        and the properties it was created with (the server keeps running)."""
        with self._lock:
            for kind in self._kinds.values():
                kind.reset()
            self._reset_state()
            self.strict_properties = self._initial_strict

    # -- what it saw ----------------------------------------------------------------------

    @property
    def contacts(self) -> dict[str, StoredContact]:
        """A snapshot of the stored contacts, keyed by lower-case email (a contact without
        one by its id, as text)."""
        with self._lock:
            return {key: StoredContact(c.vid, dict(c.properties)) for key, c in self._book}

    def contact(self, email: str, *, by: str = "email") -> StoredContact | None:
        """The stored contact with this email (any case; primary or additional), or None;
        ``by`` finds it by another unique property's value, or by ``hs_object_id``."""
        with self._lock:
            c = self._book.find_by(by, str(email))
            return None if c is None else StoredContact(c.vid, dict(c.properties))

    def records(self, object_type: str) -> dict[str, StoredContact]:
        """A snapshot of the stored records of an object type (``"companies"``, a custom
        object's type id...), keyed by their id, as text."""
        kind = find_kind(self._kinds, object_type)
        if kind is None:
            raise ValueError(f"the fake has no object type {object_type!r}")
        with self._lock:
            return {str(r.vid): StoredContact(r.vid, dict(r.properties)) for _, r in kind.book}

    def record(self, object_type: str, value: str, *, by: str) -> StoredContact | None:
        """The stored record of an object type whose ``by`` property (a unique one, or
        ``hs_object_id``) is ``value``, or None."""
        kind = find_kind(self._kinds, object_type)
        if kind is None:
            raise ValueError(f"the fake has no object type {object_type!r}")
        with self._lock:
            r = kind.book.find_by(by, str(value))
            return None if r is None else StoredContact(r.vid, dict(r.properties))

    def associations(self, from_type: str, to_type: str) -> set[tuple[int, int]]:
        """The associations stored between records of two object types, as ``(from id, to
        id)`` pairs."""
        a, b = find_kind(self._kinds, from_type), find_kind(self._kinds, to_type)
        if a is None or b is None:
            raise ValueError(f"the fake has no object type {from_type!r} or {to_type!r}")
        with self._lock:
            return {(f, t) for fa, f, tb, t in self._associations if (fa, tb) == (a.name, b.name)}

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

    def script(self, *responses: ScriptedResponse) -> None:
        """Answer the next requests with these responses, in order, whatever they ask; then
        behave normally again. Scripted requests are recorded and counted as usual."""
        with self._lock:
            self._scripted.extend(responses)

    def unscript(self) -> int:
        """Drops the scripted responses not given yet (an outage that ends now); returns how
        many there were."""
        with self._lock:
            left = len(self._scripted)
            self._scripted.clear()
            return left

    @property
    def peak_in_flight(self) -> int:
        """The most requests that were being handled at the same moment."""
        with self._lock:
            return self._peak_in_flight

    # -- one request ----------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        # On its way: the request arrives half a network round trip after it was sent.
        if self.network_latency:
            time.sleep(self.network_latency / 2)
        received_at = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
            # HubSpot counts a request against its limits when it arrives, not when it answers.
            self._request_count += 1
            limit_headers, over_policy = self._count_against_limits()
            scripted = self._scripted.popleft() if self._scripted else None
        try:
            # Counted, then processed: a write takes its time, a light read does not.
            if self.latency and method != "GET":
                time.sleep(self.latency)
            correlation_id = str(uuid.uuid4())
            try:
                if scripted is not None:
                    raise _scripted_reply(scripted)
                if over_policy is not None:
                    raise self._rate_limited(over_policy, correlation_id)
                token_path = target.partition("?")[0].rstrip("/")
                if token_path in (TOKEN_PATH, V1_TOKEN_PATH):
                    _allow(method, "POST", correlation_id)
                    rfc = token_path == TOKEN_PATH
                    reply = Reply(*self._token_grant(headers, body, correlation_id, rfc=rfc))
                else:
                    self._check_auth(headers.get("authorization", ""), correlation_id)
                    reply = Reply(*self._route(method, target, body, correlation_id))
            except Reply as raised:
                reply = raised
            reply.headers = {
                "x-hubspot-correlation-id": correlation_id,
                **limit_headers,
                **reply.headers,
            }
            with self._lock:
                self._status_counts[reply.status] += 1
                if self._record:
                    request = ReceivedRequest(
                        method, target, dict(headers), body, reply.status, received_at
                    )
                    self._requests.append(request)
            if reply.delay:
                time.sleep(reply.delay)
            if self.network_latency:
                time.sleep(self.network_latency / 2)
            return reply
        finally:
            with self._lock:
                self._in_flight -= 1

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

    def _rate_limited(self, policy: str, correlation_id: str) -> Reply:
        limited = answers.rate_limited(policy, correlation_id)
        if self.retry_after is not None and policy != "DAILY":
            limited.headers["Retry-After"] = f"{self.retry_after:g}"
        return limited

    def _check_auth(self, authorization: str, correlation_id: str) -> None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        with self._lock:
            expires_at = self._access_tokens.get(token)
        if expires_at is not None:
            if time.monotonic() >= expires_at:
                raise answers.unauthorized(
                    "The OAuth token used to make this call expired 0 hour(s) ago.",
                    "EXPIRED_AUTHENTICATION",
                    correlation_id,
                )
            return
        if (
            scheme.lower() != "bearer"
            or not token
            or (token != self.token and token not in self._expired and token not in self._readonly)
        ):
            raise answers.unauthorized(
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION",
                correlation_id,
            )
        if token in self._expired:
            raise answers.unauthorized(
                "The OAuth token used to make this call expired 1 hour(s) ago.",
                "EXPIRED_AUTHENTICATION",
                correlation_id,
            )
        if token in self._readonly:
            raise answers.missing_scope("crm.objects.contacts.write", correlation_id)

    def _route(self, method: str, target: str, body: bytes, correlation_id: str) -> tuple[int, Any]:
        path = target.partition("?")[0]
        segment = path.removeprefix(V1_UPSERT_PREFIX).removesuffix("/")
        if path.startswith(V1_UPSERT_PREFIX) and segment and "/" not in segment:
            _allow(method, "POST", correlation_id)
            try:
                email = unquote_to_bytes(segment).decode("utf-8")
            except UnicodeDecodeError:
                message = "the email in the path is not UTF-8"
                raise Reply(400, answers.error_body(message, correlation_id)) from None
            return self._v1_upsert(email, body, correlation_id)
        route = (
            _V3_BATCH_PATH.match(path)
            or _V3_READ_PATH.match(path)
            or _V3_UPDATE_PATH.match(path)
            or _V3_ARCHIVE_PATH.match(path)
            or _PROPERTIES_PATH.match(path)
            or _ACCOUNT_PATH.match(path)
            or _ASSOCIATE_PATH.match(path)
            or _ASSOCIATIONS_READ_PATH.match(path)
            or _ASSOCIATE_LABELLED_PATH.match(path)
            or _UNASSOCIATE_PATH.match(path)
            or _ASSOCIATION_LABELS_PATH.match(path)
        )
        if route and route.group("date") and route.group("date") not in API_VERSIONS:
            raise Reply(404, answers.error_body("resource not found", correlation_id))
        kind, date = self._kinds["contacts"], route.group("date") if route else None
        if route and "object" in route.re.groupindex:
            named = unquote_to_bytes(route.group("object")).decode("utf-8", "replace")
            found = find_kind(self._kinds, named)
            if found is None:
                message = f"Unable to infer object type from: {named}"
                raise Reply(400, answers.error_body(message, correlation_id))
            kind = found
        association_paths = (
            _ASSOCIATE_PATH,
            _ASSOCIATIONS_READ_PATH,
            _ASSOCIATE_LABELLED_PATH,
            _UNASSOCIATE_PATH,
            _ASSOCIATION_LABELS_PATH,
        )
        if route and route.re in association_paths:
            _allow(
                method, "GET" if route.re is _ASSOCIATION_LABELS_PATH else "POST", correlation_id
            )
            named = unquote_to_bytes(route.group("to")).decode("utf-8", "replace")
            to = find_kind(self._kinds, named)
            if to is None:
                message = f"Unable to infer object type from: {named}"
                raise Reply(400, answers.error_body(message, correlation_id))
            if route.re is _ASSOCIATE_PATH:
                return self._associate(kind, to, body, correlation_id, date)
            if route.re is _ASSOCIATE_LABELLED_PATH:
                return self._associate(kind, to, body, correlation_id, date, labelled=True)
            if route.re is _UNASSOCIATE_PATH:
                return self._unassociate(kind, to, body, correlation_id)
            if route.re is _ASSOCIATION_LABELS_PATH:
                return 200, {"results": self._labels_of(kind, to)}
            return self._read_associations(kind, to, body, correlation_id, date)
        if _V3_BATCH_PATH.match(path):
            _allow(method, "POST", correlation_id)
            return self._v3_batch_upsert(kind, body, correlation_id, date)
        if _V3_READ_PATH.match(path):
            _allow(method, "POST", correlation_id)
            return self._v3_batch_read(kind, body, correlation_id, date)
        if _V3_UPDATE_PATH.match(path):
            _allow(method, "POST", correlation_id)
            return self._v3_batch_update(kind, body, correlation_id, date)
        if _V3_ARCHIVE_PATH.match(path):
            _allow(method, "POST", correlation_id)
            return self._v3_batch_archive(kind, body, correlation_id)
        if _PROPERTIES_PATH.match(path):
            _allow(method, "GET", correlation_id)
            if not self.properties_scope:
                raise answers.missing_scope(f"crm.schemas.{kind.name}.read", correlation_id)
            with self._lock:
                schema = dict(kind.schema)
            return 200, {"results": rules.definitions(schema, kind.unique)}
        if _ACCOUNT_PATH.match(path):
            _allow(method, "GET", correlation_id)
            return 200, {
                "portalId": self.portal_id,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        raise Reply(404, answers.error_body("resource not found", correlation_id))

    # -- OAuth ----------------------------------------------------------------------------

    def _token_grant(
        self, headers: Mapping[str, str], body: bytes, correlation_id: str, *, rfc: bool
    ) -> tuple[int, Any]:
        """HubSpot's token endpoint: a form with ``grant_type`` ``refresh_token`` (and the
        refresh token) or ``authorization_code`` (and the code), and the app's
        ``client_id`` and ``client_secret``; answers a new access token that expires after
        ``token_life`` seconds. A refusal reads as RFC 6749 says (``rfc``: the dated path) or
        as v1's ``status`` and ``message``."""
        # v1's codes, and RFC 6749's for the same refusals.
        rfc_codes = {
            "BAD_REQUEST": "invalid_request",
            "BAD_CLIENT_ID": "invalid_client",
            "BAD_AUTH_CODE": "invalid_grant",
            "BAD_REFRESH_TOKEN": "invalid_grant",
            "BAD_GRANT_TYPE": "unsupported_grant_type",
        }

        def refused(status: str, message: str) -> tuple[int, Any]:
            if rfc:
                return 400, {"error": rfc_codes[status], "error_description": message}
            return 400, {"status": status, "message": message, "correlationId": correlation_id}

        if "application/x-www-form-urlencoded" not in headers.get("content-type", ""):
            return refused("BAD_REQUEST", "the body must be a form")
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}

        if self.oauth_clients.get(form.get("client_id", "")) != form.get("client_secret"):
            return refused("BAD_CLIENT_ID", "missing or unknown client id or secret")
        with self._lock:
            grant = form.get("grant_type")
            if grant == "authorization_code":
                code = form.get("code", "")
                if code not in self._codes:
                    return refused("BAD_AUTH_CODE", "missing or unknown auth code")
                self._codes.discard(code)
                refresh = f"fake-refresh-{uuid.uuid4()}"
                self._refresh_tokens.add(refresh)
            elif grant == "refresh_token":
                refresh = form.get("refresh_token", "")
                if refresh not in self._refresh_tokens:
                    return refused("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            else:
                return refused("BAD_GRANT_TYPE", f"unknown grant_type {grant!r}")
            access = f"fake-oauth-{uuid.uuid4()}"
            self._access_tokens[access] = time.monotonic() + self.token_life
            self._grants += 1
        return 200, {
            "token_type": "bearer",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": max(1, round(self.token_life)),
        }

    def revoke(self, refresh_token: str) -> None:
        """Revokes an OAuth refresh token: the token endpoint refuses it from now on."""
        with self._lock:
            self._refresh_tokens.discard(refresh_token)

    def authorization_code(self) -> str:
        """A new one-time authorization code, as HubSpot gives an app after its install."""
        code = f"fake-code-{uuid.uuid4()}"
        with self._lock:
            self._codes.add(code)
        return code

    def expire_access_tokens(self) -> None:
        """Every OAuth access token given so far expires now."""
        with self._lock:
            for token in self._access_tokens:
                self._access_tokens[token] = 0.0

    @property
    def token_grants(self) -> int:
        """How many access tokens the token endpoint gave."""
        with self._lock:
            return self._grants

    # -- the upserts ----------------------------------------------------------------------

    def _v1_upsert(self, path_email: str, body: bytes, correlation_id: str) -> tuple[int, Any]:
        values = rules.v1_values(rules.parse_json(body, correlation_id), correlation_id)
        found = rules.problems(
            self._schema, self.strict_properties, path_email, values, self.owners
        )
        if found:
            raise answers.v1_validation_error(found, correlation_id)
        with self._lock:
            owner = self._book.clash(path_email, values)
            if owner is not None:
                email = owner.properties["email"]
                conflict = answers.v1_conflict(
                    owner.vid, email, self._new_conflicts, correlation_id
                )
                raise Reply(409, conflict)
            contact, is_new = self._book.store(path_email, values, self._schema)
        return 200, {"vid": contact.vid, "isNew": is_new}

    def _input_problems(
        self,
        kind: ObjectKind,
        id_property: str,
        id: str,
        props: Mapping[str, str],
        date: str | None,
    ) -> list[tuple[str, str, str]]:
        """What HubSpot refuses in one input: its values, then (from 2026-09 on) the portal's
        validation rules for contacts, which need the contact as stored (with the lock
        held)."""
        email = id if id_property == "email" and kind.is_contacts else None
        found = rules.problems(kind.schema, self.strict_properties, email, props, self.owners)
        if found or date is None or date < RULES_FROM or not kind.is_contacts:
            return found
        existing = kind.book.find_by(id_property, id)
        return rules.rule_problems(
            self.required_on_create,
            self.conditional_rules,
            None if existing is None else existing.properties,
            props,
        )

    def _matchable(
        self, kind: ObjectKind, id_property: str, correlation_id: str, update: bool = False
    ) -> None:
        """Refuses an id property whose values are not unique (a contact's ``email``, and for
        batch update and read HubSpot's own id, are)."""
        allowed = (id_property == "email" and kind.is_contacts) or kind.book.is_unique(id_property)
        if not allowed and not (update and id_property == "hs_object_id"):
            raise Reply(400, rules.non_unique(id_property, correlation_id, kind.type_id))

    def _conflict(
        self,
        kind: ObjectKind,
        contact: Contact | None,
        props: Mapping[str, str],
        correlation_id: str,
    ) -> None:
        """HubSpot's 409 for a write that would give its record another one's address (a
        contact's) or unique value."""
        owner = kind.book.clash_for(contact, props) if kind.is_contacts else None
        if owner is not None:
            # The batch answer's shape: the existing contact's id in the message only.
            message = f"Contact already exists. Existing ID: {owner.vid}"
            raise Reply(409, answers.v3_error(message, correlation_id, category="CONFLICT"))
        unique = kind.book.unique_clash(contact, props)
        if unique is not None:
            name, value, holder = unique
            message = (
                f"A {singular(kind)} with the value '{value}' for the unique property '{name}' "
                f"already exists. Existing ID: {holder.vid}"
            )
            raise Reply(409, answers.v3_error(message, correlation_id, category="CONFLICT"))

    def _v3_batch_upsert(
        self, kind: ObjectKind, body: bytes, correlation_id: str, date: str | None
    ) -> tuple[int, Any]:
        parsed = rules.v3_inputs(rules.parse_json(body, correlation_id), correlation_id)
        for id_property, _, _, _ in parsed:
            self._matchable(kind, id_property, correlation_id)
        started = answers.iso_now()
        with self._lock:
            refused = {
                i: found
                for i, (id_property, id, props, _) in enumerate(parsed)
                if (found := self._input_problems(kind, id_property, id, props, date))
            }
            if refused and not self.partial_answers:
                errors = [
                    {"message": message, "code": code, "context": {"propertyName": [name]}}
                    for found in refused.values()
                    for name, code, message in found
                ]
                # HubSpot may name only the first bad input.
                raise answers.v3_validation_error(
                    errors if self.name_all_errors else errors[:1], correlation_id
                )
            good = [p for i, p in enumerate(parsed) if i not in refused]
            for id_property, id, props, _ in good:
                self._conflict(kind, kind.book.find_by(id_property, id), props, correlation_id)
            results = [
                _v3_result(*kind.book.store_by(idp, id, props, kind.schema), props, trace)
                for idp, id, props, trace in good
            ]
        # HubSpot does not promise input order; neither does the fake.
        results.reverse()
        errors = [
            answers.input_error(parsed[i][3], found, correlation_id) for i, found in refused.items()
        ]
        return _batch_answer(results, errors, started, date)

    def _v3_batch_update(
        self, kind: ObjectKind, body: bytes, correlation_id: str, date: str | None
    ) -> tuple[int, Any]:
        """Updates contacts by id (HubSpot's own when ``idProperty`` is left out, else a
        unique property's value); never creates one: an id no contact has is an error of its
        input, as is a value HubSpot refuses (from 2026-09 on, a partial answer either way)."""
        parsed = rules.v3_inputs(rules.parse_json(body, correlation_id), correlation_id, True)
        for id_property, _, _, _ in parsed:
            if id_property == "email":
                # HubSpot updates by email only through upsert.
                raise Reply(400, rules.non_unique(id_property, correlation_id))
            self._matchable(kind, id_property, correlation_id, update=True)
        started = answers.iso_now()
        results, errors = [], []
        with self._lock:
            found = [(p, kind.book.find_by(p[0], p[1])) for p in parsed]
            good = []
            for (_, id, props, trace), contact in found:
                if contact is None:
                    errors.append(
                        answers.not_found([id], correlation_id, trace, singular(kind).upper())
                    )
                    continue
                problems = rules.problems(
                    kind.schema, self.strict_properties, None, props, self.owners
                )
                rules_apply = kind.is_contacts and date is not None and date >= RULES_FROM
                if not problems and rules_apply:
                    problems = rules.rule_problems(
                        (), self.conditional_rules, contact.properties, props
                    )
                if problems and not self.partial_answers:
                    errors_named = [
                        {"message": m, "code": c, "context": {"propertyName": [n]}}
                        for n, c, m in problems
                    ]
                    raise answers.v3_validation_error(errors_named[:1], correlation_id)
                if problems:
                    errors.append(answers.input_error(trace, problems, correlation_id))
                    continue
                good.append((contact, props, trace))
            for contact, props, _ in good:
                self._conflict(kind, contact, props, correlation_id)
            for contact, props, trace in good:
                stored, _ = kind.book.store_by("hs_object_id", str(contact.vid), props, kind.schema)
                result = _v3_result(stored, False, props, trace if self.update_trace_ids else None)
                del result["new"]
                results.append(result)
        results.reverse()
        return _batch_answer(results, errors, started, date)

    def _v3_batch_archive(
        self, kind: ObjectKind, body: bytes, correlation_id: str
    ) -> tuple[int, Any]:
        """Archives records by HubSpot id (``{"inputs": [{"id": "1001"}, ...]}``, at most
        100), with their associations; ids no record has are passed over, as HubSpot does.
        Answers 204 with no body."""
        payload = rules.parse_json(body, correlation_id)
        inputs = payload.get("inputs") if isinstance(payload, dict) else None
        if not isinstance(inputs, list) or len(inputs) > 100:
            message = "inputs must be a list of at most 100 {'id': ...}"
            raise Reply(
                400, answers.error_body(message, correlation_id, category="VALIDATION_ERROR")
            )
        ids = [str(i.get("id", "")) if isinstance(i, dict) else "" for i in inputs]
        if not all(i.isdigit() for i in ids):
            message = f"each input's id must be a record id: {ids}"
            raise Reply(
                400, answers.error_body(message, correlation_id, category="VALIDATION_ERROR")
            )
        with self._lock:
            for vid in map(int, ids):
                if kind.book.archive(vid) is not None:
                    self._associations = {
                        a
                        for a in self._associations
                        if not (
                            (a[0] == kind.name and a[1] == vid)
                            or (a[2] == kind.name and a[3] == vid)
                        )
                    }
        return 204, b""

    def archived(self, object_type: str = "contacts") -> dict[int, StoredContact]:
        """The archived records of an object type, by id."""
        kind = find_kind(self._kinds, object_type)
        if kind is None:
            raise ValueError(f"the fake has no object type {object_type!r}")
        with self._lock:
            return {v: StoredContact(v, dict(c.properties)) for v, c in kind.book.archived.items()}

    def _v3_batch_read(
        self, kind: ObjectKind, body: bytes, correlation_id: str, date: str | None
    ) -> tuple[int, Any]:
        """Contacts by address (primary or additional): the properties asked for; the
        addresses no contact has in ``errors`` (a 207 before 2026-09, a 200 from then on)."""
        payload = rules.parse_json(body, correlation_id)
        id_property, ids, wanted = rules.v3_read_inputs(payload, correlation_id)
        self._matchable(kind, id_property, correlation_id, update=True)
        started = answers.iso_now()
        results, missing = [], []
        with self._lock:
            for id in ids:
                contact = kind.book.find_by(id_property, id)
                if contact is None:
                    missing.append(id)
                    continue
                # What was asked for: null where the contact has no value.
                shown: dict[str, Any] = {k: contact.properties.get(k) for k in wanted}
                shown["hs_object_id"] = str(contact.vid)
                results.append(answers.read_result(contact.vid, shown))
        what = singular(kind).upper()
        errors = [answers.not_found(missing, correlation_id, None, what)] if missing else []
        return _batch_answer(results, errors, started, date)

    def _association_inputs(self, body: bytes, correlation_id: str, pairs: bool) -> list[Any]:
        """The ``inputs`` of an association request: ``(from, to)`` id pairs, or ids."""
        payload = rules.parse_json(body, correlation_id)
        inputs = payload.get("inputs") if isinstance(payload, dict) else None
        if not isinstance(inputs, list) or not inputs:
            raise Reply(400, answers.v3_error("Invalid input JSON: no inputs", correlation_id))
        if len(inputs) > 100:
            message = "Batch input too large: at most 100 inputs"
            raise Reply(400, answers.v3_error(message, correlation_id))

        def id_of(value: Any) -> int:
            text = value.get("id") if isinstance(value, dict) else None
            if not isinstance(text, str) or not text.isdigit():
                message = f"Invalid input JSON: an id must be a string of digits, got {text!r}"
                raise Reply(400, answers.v3_error(message, correlation_id))
            return int(text)

        if pairs:
            return [(id_of(i.get("from")), id_of(i.get("to"))) for i in inputs]
        return [id_of(i) for i in inputs]

    def _labels_of(self, a: ObjectKind, b: ObjectKind) -> list[dict[str, Any]]:
        """The association types from ``a`` to ``b``: the plain one, HubSpot's labels, and
        the labels the portal defined (``association_labels``)."""
        if not associated(a, b):
            return []
        out: list[dict[str, Any]] = [
            {"category": "HUBSPOT_DEFINED", "typeId": _PLAIN_TYPE, "label": None}
        ]
        for type_id, label in HUBSPOT_LABELS.get((a.name, b.name), {}).items():
            out.append({"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label})
        custom = self.association_labels.get(f"{a.name}/{b.name}", ())
        for i, label in enumerate(custom):
            out.append(
                {"category": "USER_DEFINED", "typeId": _FIRST_CUSTOM_TYPE + i, "label": label}
            )
        return out

    def association_types(self, from_type: str, to_type: str) -> dict[tuple[int, int], set[str]]:
        """The labels of each association between records of two object types, as ``(from
        id, to id)`` to label names (empty for the plain association)."""
        a, b = find_kind(self._kinds, from_type), find_kind(self._kinds, to_type)
        if a is None or b is None:
            raise ValueError(f"the fake has no object type {from_type!r} or {to_type!r}")
        names = {t["typeId"]: t["label"] for t in self._labels_of(a, b)}
        with self._lock:
            return {
                (f, t): {names[i] for i in types if names.get(i)}
                for (fa, f, tb, t), types in self._association_labels.items()
                if (fa, tb) == (a.name, b.name) and (fa, f, tb, t) in self._associations
            }

    def _unassociate(
        self, a: ObjectKind, b: ObjectKind, body: bytes, correlation_id: str
    ) -> tuple[int, Any]:
        """Removes every association between each ``from`` and its ``to`` records
        (``{"inputs": [{"from": {"id"}, "to": [{"id"}, ...]}]}``); answers 204."""
        payload = rules.parse_json(body, correlation_id)
        inputs = payload.get("inputs") if isinstance(payload, dict) else None
        if not isinstance(inputs, list) or not inputs or len(inputs) > 100:
            raise Reply(400, answers.v3_error("Invalid input JSON: inputs", correlation_id))
        pairs = []
        for i in inputs:
            tos = i.get("to") if isinstance(i, dict) else None
            source = i.get("from") if isinstance(i, dict) else None
            if not isinstance(tos, list) or not isinstance(source, dict):
                message = "Invalid input JSON: each input has a 'from' and a list of 'to'"
                raise Reply(400, answers.v3_error(message, correlation_id))
            source_id = str(source.get("id", ""))
            for to in tos:
                to_id = str(to.get("id", "")) if isinstance(to, dict) else ""
                if not (source_id.isdigit() and to_id.isdigit()):
                    raise Reply(400, answers.v3_error("Invalid input JSON: ids", correlation_id))
                pairs.append((int(source_id), int(to_id)))
        with self._lock:
            for f, t in pairs:
                for key in ((a.name, f, b.name, t), (b.name, t, a.name, f)):
                    self._associations.discard(key)
                    self._association_labels.pop(key, None)
        return 204, b""

    def _associate(
        self,
        a: ObjectKind,
        b: ObjectKind,
        body: bytes,
        correlation_id: str,
        date: str | None,
        labelled: bool = False,
    ) -> tuple[int, Any]:
        """Default (or, ``labelled``, labelled) associations between records of ``a`` and
        ``b``; inputs naming a record that does not exist are refused one by one, as are
        association types the pair does not have."""
        if not self.edit_associations:
            # The portal's validation rule: a 400 with no code.
            message = "Missing 'Edit Associations' permission"
            raise Reply(400, answers.v3_error(message, correlation_id))
        if not associated(a, b):
            message = f"No default association type exists between {a.type_id} and {b.type_id}"
            raise Reply(400, answers.v3_error(message, correlation_id))
        types: list[int] = [_PLAIN_TYPE]
        if labelled:
            payload = rules.parse_json(body, correlation_id)
            given = [
                t
                for i in (payload.get("inputs") or [] if isinstance(payload, dict) else [])
                if isinstance(i, dict)
                for t in (i.get("types") or [])
            ]
            known = {t["typeId"]: t for t in self._labels_of(a, b)}
            types = []
            for t in given:
                type_id = t.get("associationTypeId") if isinstance(t, dict) else None
                if (
                    not isinstance(type_id, int)
                    or type_id not in known
                    or t.get("associationCategory") != known[type_id]["category"]
                ):
                    message = f"association type {t!r} does not exist between {a.name} and {b.name}"
                    raise Reply(400, answers.v3_error(message, correlation_id))
                types.append(type_id)
        pairs = self._association_inputs(body, correlation_id, pairs=True)
        started = answers.iso_now()
        results, errors = [], []
        with self._lock:
            for f, t in pairs:
                missing = [
                    str(i)
                    for i, kind in ((f, a), (t, b))
                    if kind.book.find_by("hs_object_id", str(i)) is None
                ]
                if missing:
                    what = singular(b if str(f) not in missing else a)
                    errors.append(
                        answers.v3_error(
                            f"No {what} with id {missing[0]} exists",
                            correlation_id,
                            context={"ids": missing},
                        )
                    )
                    continue
                self._associations.add((a.name, f, b.name, t))
                self._associations.add((b.name, t, a.name, f))
                self._association_labels.setdefault((a.name, f, b.name, t), set()).update(types)
                if labelled:
                    names = {x["typeId"]: x["label"] for x in self._labels_of(a, b)}
                    results.append(
                        {
                            "fromObjectTypeId": a.type_id,
                            "fromObjectId": f,
                            "toObjectTypeId": b.type_id,
                            "toObjectId": t,
                            "labels": [names[i] for i in types if names.get(i)],
                        }
                    )
                    continue
                results.append(
                    {
                        "from": {"id": str(f)},
                        "to": {"id": str(t)},
                        "associationSpec": {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": 1,
                        },
                    }
                )
        return _batch_answer(results, errors, started, date)

    def _read_associations(
        self, a: ObjectKind, b: ObjectKind, body: bytes, correlation_id: str, date: str | None
    ) -> tuple[int, Any]:
        """Each record's associated records of type ``b``."""
        if not associated(a, b):
            message = f"No default association type exists between {a.type_id} and {b.type_id}"
            raise Reply(400, answers.v3_error(message, correlation_id))
        ids = self._association_inputs(body, correlation_id, pairs=False)
        started = answers.iso_now()
        results: list[dict[str, Any]] = []
        with self._lock:
            for f in ids:
                to = sorted(
                    t for fa, ff, tb, t in self._associations if (fa, ff, tb) == (a.name, f, b.name)
                )
                if to:
                    results.append(
                        {
                            "from": {"id": str(f)},
                            "to": [
                                {
                                    "toObjectId": t,
                                    "associationTypes": [
                                        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": None}
                                    ],
                                }
                                for t in to
                            ],
                        }
                    )
        return _batch_answer(results, [], started, date)


def _batch_answer(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str, date: str | None
) -> tuple[int, Any]:
    """A batch answer; with errors, a partial one: 207 on v3 and 2026-03, and from 2026-09 a
    200 that carries ``errors`` and ``numErrors``."""
    answer: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": answers.iso_now(),
    }
    if not errors:
        return 200, answer
    answer["numErrors"] = len(errors)
    answer["errors"] = errors
    return (200 if date is not None and date >= RULES_FROM else 207), answer


def _allow(method: str, allowed: str, correlation_id: str) -> None:
    if method != allowed:
        raise Reply(405, answers.error_body(f"{method} is not allowed here", correlation_id))


def _scripted_reply(scripted: ScriptedResponse) -> Reply:
    return Reply(
        scripted.status,
        b"" if scripted.body is None else scripted.body,
        {"content-type": scripted.content_type, **scripted.headers},
        delay=scripted.delay,
        disconnect=scripted.disconnect,
    )


def _v3_result(
    contact: Contact, is_new: bool, written: Mapping[str, str], trace: Any
) -> dict[str, Any]:
    """One batch result: HubSpot echoes what was written and the properties it sets itself."""
    echoed = {k: contact.properties[k] for k in written if k in contact.properties}
    echoed["hs_object_id"] = str(contact.vid)
    echoed["createdate"] = answers.iso(int(contact.properties["createdate"]))
    echoed["lastmodifieddate"] = answers.iso(int(contact.properties["lastmodifieddate"]))
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
    return result
