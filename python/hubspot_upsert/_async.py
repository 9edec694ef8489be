"""The asyncio face: :class:`AsyncHubSpot`.

A single upsert runs as a task on the client's own Rust runtime (the same one, and the same
request path, as the sync client's); the event loop only waits on a future that the runtime
settles with ``call_soon_threadsafe``, so it never waits on the network. Cancelling the awaiting
task aborts the request in flight.

A bulk run is the sync one on a worker thread (it waits with the GIL released); records may
come from an async iterable, read on the event loop and handed over through a bounded queue.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from . import _bulk, _native
from ._client import HubSpot, _id_field
from ._errors import add_note
from ._objects import CrmObjects

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._client import ClientOptions

#: The note a cancelled upsert carries (the request may have reached HubSpot).
CANCELLED_NOTE = (
    "hubspot_upsert: cancelled while talking to HubSpot; a request in flight may still have "
    "been applied"
)
_END = object()
T = TypeVar("T")


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # cancelled meanwhile
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


async def _cancellable(work: Awaitable[T], on_cancel: Callable[[], None]) -> T:
    """Awaits ``work``; if the awaiting task is cancelled, calls ``on_cancel`` to stop the
    work and lets the ``CancelledError`` go on with :data:`CANCELLED_NOTE`."""
    try:
        return await work
    except asyncio.CancelledError as e:
        on_cancel()
        add_note(e, CANCELLED_NOTE)
        raise


class _Cancelled(Exception):
    """Stops a bulk run whose awaiting task was cancelled."""


class AsyncHubSpot:
    """The asyncio face of :class:`HubSpot`: the same options, results and exceptions, with
    ``await``. Use one per event loop (or share it: it is thread-safe), ideally as
    ``async with AsyncHubSpot(...) as hs``."""

    __slots__ = ("_sync",)

    def __init__(self, token: str | None = None, **options: Unpack[ClientOptions]) -> None:
        self._sync = HubSpot(token, **options)

    @property
    def base_url(self) -> str:
        return self._sync.base_url

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        return self._sync.rate_limit

    async def create_or_update(
        self,
        email: str | int,
        properties: Mapping[str, object] | None = None,
        *,
        id_property: str = "email",
    ) -> _native.UpsertResult:
        """Create or update the contact with this email; see
        :meth:`HubSpot.create_or_update`. The event loop is free while HubSpot answers;
        cancelling the awaiting task (``asyncio.timeout``, say) aborts the request."""
        return await self._upsert("contacts", email, properties, id_property)

    def objects(self, object_type: str) -> AsyncCrmObjects:
        """Another object type of the portal, with ``await``; see :meth:`HubSpot.objects`."""
        return AsyncCrmObjects(self, object_type)

    async def _upsert(
        self,
        object_type: str,
        id: str | int,
        properties: Mapping[str, object] | None,
        id_property: str,
    ) -> _native.UpsertResult:
        """One upsert of any object type, on the client's runtime."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_native.UpsertResult] = loop.create_future()

        def on_done(ok: bool, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, ok, value)
            except RuntimeError:
                pass  # the loop is closed: nobody waits for the answer

        task = self._sync._native.create_or_update_async(
            id, properties, on_done, id_property=id_property, object=object_type
        )
        return await _cancellable(future, task.cancel)

    async def create_or_update_many(
        self,
        records: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]] | Any,
        email_field: str = "email",
        **options: Unpack[_bulk.ManyOptions],
    ) -> _native.BulkResult:
        """Create or update many contacts; see :meth:`HubSpot.create_or_update_many`.
        ``records`` may also be an async iterable. Cancelling the awaiting task stops the run
        (within one answer from HubSpot) and raises ``CancelledError`` at once."""
        options["id_field"] = _id_field(email_field, options)
        return await self.contacts.create_or_update_many(records, **options)

    @property
    def contacts(self) -> AsyncCrmObjects:
        """The portal's contacts, as :meth:`objects` gives the other types."""
        return AsyncCrmObjects(self, "contacts")

    async def _many(
        self,
        records: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]] | Any,
        progress: bool | _bulk.ProgressCallback | None,
        run_many: Callable[[Any, _bulk.ProgressCallback], _native.BulkResult],
    ) -> _native.BulkResult:
        """A bulk run of any object type (``run_many(rows, progress)``, the sync face's) on a
        worker thread, fed from an async iterable if need be, stopped by cancellation."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        feeder: asyncio.Task[None] | None = None
        if isinstance(records, AsyncIterable):
            handover: queue.Queue[Any] = queue.Queue(maxsize=1000)
            feeder = asyncio.ensure_future(_feed(records, handover, stop))
            rows: Any = _drain(handover, stop)
            total = None
        else:
            rows, total = _bulk.records_and_total(records)
        report, finish = _bulk.progress_reporter(progress, total)

        def watch(done: int, _total: int | None) -> None:
            # Called as outcomes come in: the place a cancelled run notices it.
            if stop.is_set():
                raise _Cancelled("the awaiting task was cancelled")
            if report is not None:
                report(done)

        run = loop.run_in_executor(None, lambda: run_many(rows, watch))
        try:
            return await _cancellable(run, stop.set)
        finally:
            finish()
            if feeder is not None:
                stop.set()
                feeder.cancel()

    def prepare(
        self,
        record: Mapping[str, Any],
        email_field: str = "email",
        *,
        id_property: str = "email",
        id_field: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """:meth:`HubSpot.prepare`: no request, so nothing to await."""
        return self._sync.prepare(record, email_field, id_property=id_property, id_field=id_field)

    async def check_many(
        self,
        records: Iterable[Mapping[str, Any]] | Any,
        email_field: str = "email",
        **options: Unpack[_bulk.CheckOptions],
    ) -> _native.BulkResult:
        """:meth:`HubSpot.check_many` on a worker thread."""
        options["id_field"] = _id_field(email_field, options)
        return await self.contacts.check_many(records, **options)

    async def aclose(self) -> None:
        """Closes the client's connections and stops its I/O thread, as
        :meth:`HubSpot.close` (on a worker thread: it may wait for the thread to stop)."""
        await asyncio.get_running_loop().run_in_executor(None, self._sync.close)

    async def __aenter__(self) -> AsyncHubSpot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # A client whose construction failed has no native part: say so, never raise.
        sync = getattr(self, "_sync", None)
        if getattr(sync, "_native", None) is None:
            return "<AsyncHubSpot: not constructed>"
        return f"AsyncHubSpot(base_url={self.base_url!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        return self._sync.__reduce__()


async def _feed(
    records: AsyncIterable[Mapping[str, Any]], handover: queue.Queue[Any], stop: threading.Event
) -> None:
    """Reads an async iterable on the event loop into the queue the bulk thread reads."""
    try:
        async for record in records:
            while not stop.is_set():
                try:
                    handover.put_nowait(record)
                    break
                except queue.Full:
                    await asyncio.sleep(0.005)
            if stop.is_set():
                return
    except Exception as e:  # the input failed: the run stops with that error
        handover.put(_Failed(e))
        return
    handover.put(_END)


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def _drain(handover: queue.Queue[Any], stop: threading.Event) -> Iterator[Any]:
    while True:
        try:
            item = handover.get(timeout=0.05)
        except queue.Empty:
            if stop.is_set():
                raise _Cancelled("the awaiting task was cancelled") from None
            continue
        if item is _END:
            return
        if isinstance(item, _Failed):
            raise item.error
        yield item


class AsyncCrmObjects:
    """:class:`CrmObjects` with ``await``: :meth:`AsyncHubSpot.objects`."""

    def __init__(self, client: AsyncHubSpot, object_type: str) -> None:
        self._client = client
        self._sync = CrmObjects(client._sync, object_type)
        self.name = self._sync.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} at {self._client.base_url}>"

    async def create_or_update(
        self,
        id: str | int,
        properties: Mapping[str, object] | None = None,
        *,
        id_property: str | None = None,
    ) -> _native.UpsertResult:
        """:meth:`CrmObjects.create_or_update`, the event loop free meanwhile."""
        id_property = self._sync._id_property(id_property)
        return await self._client._upsert(self.name, id, properties, id_property)

    async def create_or_update_many(
        self, records: Any, **options: Unpack[_bulk.ManyOptions]
    ) -> _native.BulkResult:
        """:meth:`CrmObjects.create_or_update_many` on a worker thread; ``records`` may also
        be an async iterable, and cancelling the awaiting task stops the run."""
        # Read before the run starts: a wrong option is raised here, not on the worker.
        settings, state = _bulk.options(options, _bulk.ManyOptions, "create_or_update_many")
        return await self._client._many(
            records,
            options.get("progress"),
            lambda rows, watch: self._sync._many(rows, settings, state, watch),
        )

    async def check_many(
        self, records: Any, **options: Unpack[_bulk.CheckOptions]
    ) -> _native.BulkResult:
        """:meth:`CrmObjects.check_many` on a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self._sync.check_many(records, **options)
        )

    def prepare(
        self,
        record: Mapping[str, Any],
        *,
        id_property: str | None = None,
        id_field: str | None = None,
    ) -> tuple[str, dict[str, str]]:
        """:meth:`CrmObjects.prepare`: no request, so nothing to await."""
        return self._sync.prepare(record, id_property=id_property, id_field=id_field)
