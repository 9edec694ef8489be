"""Mirror runs: the records a sync state wrote that a run's complete source no longer has are
archived at HubSpot, after the run, by their HubSpot ids (100 a request). Only records this
state wrote are ever archived; a run stopped or failed before its end archives nothing, and a
run that would archive more than ``max_archive`` of the state's records is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _native
from ._errors import add_note

if TYPE_CHECKING:
    from ._state import StateRun

#: The share of a state's records a mirror run archives at most, unless told otherwise (the
#: native options' default).
MAX_ARCHIVE: float = _native.BulkOptions().max_archive


class MirrorRefusedError(Exception):
    """A mirror run archived nothing because it would have archived too much (more than
    ``max_archive`` of the records its sync state wrote), or could not tell every record's
    id. The upserts of the run landed: ``bulk_result`` has them; ``would_archive`` lists the
    ``(id, HubSpot id)`` pairs it would have archived."""

    def __init__(
        self, message: str, *, bulk_result: Any, would_archive: list[tuple[str, int]]
    ) -> None:
        super().__init__(message)
        self.bulk_result = bulk_result
        self.would_archive = would_archive


def check_options(mirror: bool, state: object) -> None:
    """``mirror=True`` needs a sync state: refused before anything is sent."""
    if mirror and state is None:
        raise ValueError(
            "mirror=True needs a sync state (state=...): only records a state wrote are "
            "ever archived"
        )


def absent(run: StateRun) -> tuple[list[tuple[str, int]], int]:
    """What the state holds that the run's source did not have, ``(key, HubSpot id)``, and
    how many records the state holds."""
    held = run.held()
    return [(key, vid) for key, vid in held if key not in run.seen], len(held)


def refusal(
    run: StateRun, gone: list[tuple[str, int]], held: int, max_archive: float
) -> str | None:
    """Why a run that read its whole source may not archive ``gone``, if it may not."""
    if run.unreadable:
        return (
            f"{run.unreadable} record(s) of the source had no id that could be read: a mirror "
            "run archives only when it knows the id of every record it read, so nothing was "
            "archived"
        )
    if gone and len(gone) > max_archive * held:
        return (
            f"this run would archive {len(gone)} of the {held} records its sync state wrote "
            f"({len(gone) / held:.1%}), above max_archive={max_archive:g}: nothing was "
            "archived; check the source is complete, then run again with a higher "
            "max_archive (--max-archive)"
        )
    return None


def mirror(
    native: _native.Client,
    object_type: str,
    run: StateRun,
    result: _native.BulkResult,
    max_archive: float,
) -> None:
    """After a run that read its whole source: archives the records of ``run``'s state that
    the source no longer has, forgets them, and sets ``result.archived``. Raises
    :class:`MirrorRefusedError` (nothing archived), or the first error HubSpot gave (the
    records archived before it stay archived and forgotten)."""
    gone, held = absent(run)
    why = refusal(run, gone, held, max_archive)
    if why is not None:
        raise MirrorRefusedError(why, bulk_result=result, would_archive=gone)
    if not gone:
        result._set_archived([])
        return
    archived_ids, failed = native.archive([vid for _, vid in gone], object=object_type)
    done = set(archived_ids)
    archived = [(key, vid) for key, vid in gone if vid in done]
    run.forget([key for key, _ in archived], links=True)
    result._set_archived(archived)
    if failed:
        _, error = failed[0]
        add_note(
            error,
            f"the mirror run archived {len(archived)} of {len(gone)} records; "
            f"{len(failed)} were not archived (the next mirror run tries them again)",
        )
        error.bulk_result = result  # type: ignore[attr-defined]
        raise error


def plan(run: StateRun, result: _native.BulkResult, max_archive: float) -> str | None:
    """A dry run's view: sets ``result.archived`` to what a mirror run would archive;
    returns why the run would archive nothing instead, if it would."""
    gone, held = absent(run)
    result._set_archived(gone)
    return refusal(run, gone, held, max_archive)
