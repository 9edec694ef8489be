"""The public client: :class:`HubSpot`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from . import _bulk, _native
from ._oauth import OAuth
from ._objects import CrmObjects

if TYPE_CHECKING:
    from typing_extensions import Unpack

DEFAULT_BASE_URL = "https://api.hubapi.com"
TOKEN_ENV = "HUBSPOT_ACCESS_TOKEN"
BASE_URL_ENV = "HUBSPOT_BASE_URL"


class ClientOptions(TypedDict, total=False):
    """The keyword options of :class:`HubSpot`, for the faces that pass them on
    (:class:`AsyncHubSpot`); a test keeps the two lists the same."""

    base_url: str | None
    timeout: float
    connect_timeout: float
    missing: Literal["skip", "clear"]
    assume_utc: bool
    max_retries: int
    deadline: float
    backoff: float
    rate_limit: int | None
    rate_window: float
    ca_bundle: str | os.PathLike[str] | None
    api_version: str | None
    oauth: OAuth | None
    on_token: Callable[[dict[str, Any]], object] | None


class HubSpot:
    """A HubSpot client: one connection pool, safe to share between threads.

    ``token`` is a service key, a private-app token or an OAuth access token; when it is None
    the token is read from the ``HUBSPOT_ACCESS_TOKEN`` environment variable. An OAuth app
    gives ``oauth=OAuth(client_id, client_secret, refresh_token)`` instead (or sets
    ``HUBSPOT_CLIENT_ID``, ``HUBSPOT_CLIENT_SECRET`` and ``HUBSPOT_REFRESH_TOKEN``): the client
    gets access tokens from HubSpot's token endpoint and refreshes them ahead of their expiry
    (and once more when HubSpot answers 401); ``on_token`` is called with each new one
    (``{"access_token", "refresh_token", "expires_in"}``), for the application to store. It
    paces by public apps' limit (110 requests per 10 s) until HubSpot's headers say otherwise.
    ``base_url`` (else ``HUBSPOT_BASE_URL``, else HubSpot's) must be ``https://``, or
    ``http://`` to a loopback host (a :class:`~hubspot_upsert.testing.FakeHubSpot`).
    ``timeout`` bounds each request, ``connect_timeout`` the connection set-up.

    ``missing`` says what ``None``, NaN, ``pandas.NA`` and ``NaT`` values do: ``"skip"`` leaves
    the property out (nothing changes at HubSpot), ``"clear"`` sends ``""`` (clears it).
    ``assume_utc=True`` reads a ``datetime`` without time zone as UTC instead of refusing it.

    Failures that a retry can mend (429, 423, 477, 500, 502-504, 521-524, refused or reset
    connections, timeouts) are retried up to ``max_retries`` times, with exponential backoff
    from ``backoff`` seconds and full jitter, within ``deadline`` seconds for the whole call.
    The client paces itself by HubSpot's rate-limit headers; ``rate_limit`` requests per
    ``rate_window`` seconds sets a limit of its own (the tighter one wins).
    ``ca_bundle`` is a PEM file of extra certificate authorities to trust.

    ``api_version`` picks HubSpot's API version: ``None`` (the default) is the newest date
    version this package knows (``"2026-09"``); a date version such as ``"2026-03"`` sends
    every request there (a single upsert is a batch upsert of one); ``"legacy"`` sends them
    to the numbered paths (v1 ``createOrUpdate``, v3 batches), which HubSpot stops supporting
    in September 2027.
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        missing: Literal["skip", "clear"] = "skip",
        assume_utc: bool = False,
        max_retries: int = 5,
        deadline: float = 120.0,
        backoff: float = 0.5,
        rate_limit: int | None = None,
        rate_window: float = 10.0,
        ca_bundle: str | os.PathLike[str] | None = None,
        api_version: str | None = None,
        oauth: OAuth | None = None,
        on_token: Callable[[dict[str, Any]], object] | None = None,
    ) -> None:
        # Every option goes to the core by the name it has here; it checks them all.
        options = {k: v for k, v in locals().items() if k not in ("self", "token")}
        if token is not None and oauth is not None:
            raise ValueError("give HubSpot() a token or oauth=OAuth(...), not both")
        if oauth is not None and not isinstance(oauth, OAuth):
            raise TypeError(f"oauth must be an OAuth(...), got {type(oauth).__name__}")
        if token is None and oauth is None:
            token = os.environ.get(TOKEN_ENV)
            if not (token or "").strip():
                oauth = OAuth.from_env()
        options["oauth"] = (
            None if oauth is None else (oauth.client_id, oauth.client_secret, oauth.refresh_token)
        )
        if base_url is None:
            options["base_url"] = os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
        self._native = _native.Client(token, options)

    @property
    def base_url(self) -> str:
        """The HubSpot address requests go to, without a trailing ``/``."""
        return self._native.base_url

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """``(requests, window_seconds)`` the client paces itself by: the tighter of the one
        given and the one HubSpot's headers stated; None before either is known."""
        return self._native.rate_limit

    def create_or_update(
        self,
        email: str | int,
        properties: Mapping[str, object] | None = None,
        *,
        id_property: str = "email",
    ) -> _native.UpsertResult:
        """Create the contact with this email, or update it if it exists.

        ``properties`` maps HubSpot property names to values, converted by the rules in the
        README (bool -> "true"/"false", date -> epoch ms at midnight UTC, None -> left out...).
        Bad arguments raise ValueError or TypeError before anything is sent; HubSpot's refusals
        raise a :class:`HubSpotError` subclass.

        ``id_property`` matches the contact on another unique property instead: the first
        argument is then that property's value (a str or an int), and ``email`` may be one of
        the ``properties``. Such an upsert is a batch upsert of one, with
        ``api_version="legacy"`` too (v1 matches only by email); ``"hs_object_id"`` updates
        the contact with that HubSpot id (a batch update of one: nothing is created).
        """
        return self.contacts.create_or_update(email, properties, id_property=id_property)

    def create_or_update_many(
        self,
        records: Iterable[Mapping[str, Any]] | Any,
        email_field: str = "email",
        **options: Unpack[_bulk.ManyOptions],
    ) -> _native.BulkResult:
        """Create or update many contacts with HubSpot's batch API (100 per request).

        ``records`` is any iterable of mappings (read lazily: a generator of a million rows is
        never held whole), a pandas or a polars DataFrame. Each record holds its email under
        ``email_field``; every other key is a property, converted by the same rules as
        :meth:`create_or_update` (missing cells are left out).

        A record that cannot be sent, or that HubSpot refuses, becomes a ``RecordError`` in
        the result; the others land. The result has ``created``, ``updated``, ``failed`` and
        ``total``, and one outcome per record in input order (``keep="failures"`` keeps only
        the failures and skipped records, for very large runs). ``progress=True`` shows a
        progress bar (tqdm when installed), a callable gets ``(done, total_or_None)``. Batches
        go out as fast as the client's rate pacing allows, up to ``max_in_flight`` at once (one
        until HubSpot has accepted the first; with the definitions read, for a tenth of the
        rate window at most).

        Matching and sync modes: ``id_property`` matches records on another unique property
        (one whose definition has ``hasUniqueValue``; refused before anything is sent
        otherwise), read from each record's ``id_field`` (by default the property's own name;
        ``email`` is then an ordinary property), or on ``"hs_object_id"``, HubSpot's own id
        (batch update, never a create). ``mode="update"`` writes only contacts that exist,
        ``mode="create"`` only those that do not; ``fill_empty=True`` (or property names)
        writes a value only where HubSpot's is empty. These read each record's contact first
        (one batch read per 100 records); the records they leave alone are counted in
        ``skipped``, each a ``SkippedRecord`` with its code (``NOT_FOUND``, ``EXISTS``,
        ``NOTHING_TO_FILL``). A plain upsert run makes no reads.

        ``labels=True`` reads records as HubSpot's own export writes them: a field named by a
        property's label ("First Name") is that property, an enumeration value that is an
        option's label ("Marketing Qualified Lead") is its value, the id field may differ in
        case ("Email"), and read-only fields ("Record ID", "Create Date") are left out with
        one warning (this needs the property definitions).

        ``state`` keeps a sync state (a SQLite file's path, a ``postgresql://`` URL, or a
        :class:`SyncState`): a record whose properties are those HubSpot last accepted for
        its id is not sent and counts as ``unchanged``; each batch is journalled before it
        goes out and its accepted writes stored when its answer comes, so that a run stopped
        at any point (a kill included) is resumed by running it again. The state keeps each
        portal apart (its id is read once per client, one request). ``full=True`` sends every
        record and refreshes the state.

        ``mirror=True`` (with ``state``) makes HubSpot mirror the source: once the run has read
        every record, the records this state wrote that the source no longer has are archived
        (by HubSpot id, 100 a request; HubSpot keeps them restorable for 90 days), forgotten
        by the state, and listed in the result's ``archived``. Only records the state wrote
        are archived, never others; a run stopped or failed before its end archives nothing;
        a run that would archive more than ``max_archive`` (a share, a tenth by default) of
        the state's records, or that read a record with no readable id, archives nothing and
        raises :class:`MirrorRefusedError` (its ``bulk_result`` has the run's upserts).

        ``associate={"companies": ("company_id", "crm_id")}`` associates each contact that
        lands with the company whose ``crm_id`` is the record's ``company_id`` (a field that is
        then not sent as a property; ``"hs_object_id"``: the field holds HubSpot's company
        id), once every record has landed: the companies are looked up 100 per request (none
        for HubSpot ids), the associations made 100 per request, and nothing is created. A
        contact whose company does not exist still lands, and is in ``not_associated`` with
        the code ``ASSOCIATION_TARGET_NOT_FOUND``; ``associated`` counts the associations
        made. With a state, a record's associated keys count as its values, and a record not
        associated is sent again next time.

        A failure of the whole run (the token refused, the daily limit, HubSpot down beyond
        the retries, Ctrl-C) is raised with the partial result as its ``bulk_result``.
        """
        options["id_field"] = _id_field(email_field, options)
        return self.contacts.create_or_update_many(records, **options)

    @property
    def contacts(self) -> CrmObjects:
        """The portal's contacts, as :meth:`objects` gives the other types: the client's own
        ``create_or_update``, ``create_or_update_many``, ``check_many`` and ``prepare`` are
        its methods, with ``email_field`` naming the id's field."""
        return CrmObjects(self, "contacts")

    def objects(self, object_type: str) -> CrmObjects:
        """Another object type of the portal: ``"companies"``, ``"deals"``, ``"tickets"``, or
        a custom object by its name or type id (``"2-123456"``), with the same
        ``create_or_update``, ``create_or_update_many``, ``check_many`` and ``prepare``, on
        this client (its connections, pacing and retries). Records are matched on a unique
        property of that object (``id_property``, which it needs) or on ``hs_object_id``."""
        return CrmObjects(self, object_type)

    def prepare(
        self,
        record: Mapping[str, Any],
        email_field: str = "email",
        *,
        id_property: str = "email",
        id_field: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """One record as :meth:`create_or_update_many` would send it, without sending it:
        ``(email, {property: text})``, the email trimmed and checked and every value converted
        by the rules in the README (missing values left out, or ``""`` with
        ``missing="clear"``). A value that cannot be sent raises ValueError or TypeError
        naming it. No request is made; :meth:`check_many` also checks the portal's property
        definitions. ``id_property`` and ``id_field`` read the id as
        :meth:`create_or_update_many` does."""
        field = _id_field(email_field, {"id_property": id_property, "id_field": id_field})
        return self.contacts.prepare(record, id_property=id_property, id_field=field)

    def check_many(
        self,
        records: Iterable[Mapping[str, Any]] | Any,
        email_field: str = "email",
        **options: Unpack[_bulk.CheckOptions],
    ) -> _native.BulkResult:
        """Check records as :meth:`create_or_update_many` would before sending, and send no
        write (``labels`` and ``associate`` as there: with ``definitions``, the associated
        object type and its key property are checked too).

        Each record is converted by the same rules; with ``definitions=True`` it is also checked
        against the portal's contact property definitions (one read, kept by the client as for
        bulk runs; a token without the ``crm.schemas.contacts.read`` scope checks conversion
        only). The result keeps the failures (``keep="failures"``): ``total`` records, of which
        ``failed`` would fail, each a ``RecordError`` with HubSpot's code.

        ``read=True`` also reads each record's contact, as :meth:`create_or_update_many` with
        these ``id_property``, ``mode`` and ``fill_empty`` would (one batch read per 100
        records, no write): ``created`` and ``updated`` then count the records that would be
        created and updated, ``skipped`` those the mode would leave alone.

        ``state`` (a sync state, as :meth:`create_or_update_many` takes it; not with
        ``read``) tells, with no request of its own, which records would be sent: the result
        then has an outcome for each record, ``unchanged`` counting those the state holds as
        they are, ``created`` those it holds nothing for and ``updated`` the changed ones. The
        portal is the one of the state's latest run for these records. With ``mirror=True``
        the result's ``archived`` lists the records a mirror run would archive (a warning
        says so when the run would archive none of them instead: above ``max_archive``).
        """
        options["id_field"] = _id_field(email_field, options)
        return self.contacts.check_many(records, **options)

    def close(self) -> None:
        """Closes the client's connections and stops its I/O thread (a call in progress on
        another thread keeps them). The client stays usable: the next call opens them again.
        ``with HubSpot() as hs:`` closes it on leaving the block."""
        native = getattr(self, "_native", None)
        if native is not None:
            native.close()

    def __enter__(self) -> HubSpot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        # A client whose construction failed has no native part: say so, never raise.
        native = getattr(self, "_native", None)
        if native is None:
            return "<HubSpot: not constructed>"
        return f"HubSpot(base_url={native.base_url!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError(
            "a HubSpot client cannot be pickled or sent to another process: create it inside "
            f"the worker instead, e.g. HubSpot() reading the token from {TOKEN_ENV}"
        )


def _id_field(email_field: str, options: Mapping[str, Any]) -> str:
    """The field each contact's id is read from, by ``options``' ``id_property`` and
    ``id_field``: ``id_field``, else ``email_field`` when matching on email, else the id
    property's own name."""
    id_field = options.get("id_field")
    if id_field is not None:
        return str(id_field)
    id_property = options.get("id_property", "email")
    if not isinstance(id_property, str):
        raise TypeError(f"id_property must be a str, got {type(id_property).__name__}")
    return email_field if id_property.strip() == "email" else id_property.strip()
