"""What a run leaves: the summary line, the dry run's preview and causes, the failures file
and the JSON report. Files are written beside their names and renamed when complete; a second
signal keeps what they hold so far."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .. import _mirror, _native
from .._client import HubSpot
from .._native import Converter
from .._objects import face
from .._state import SyncState
from ._args import ERROR_FIELDS, PROG, fill_empty, id_column
from ._inputs import BadRecord, InputError, Source


def summary(
    result: Any, seconds: float, dry_run: bool = False, read: bool = False, state: bool = False
) -> str:
    rate = result.total / seconds if seconds > 0 else 0.0
    skipped = f", skipped {result.skipped}" if result.skipped else ""
    if dry_run and state:
        return (
            f"dry run: {result.created + result.updated} records would be sent "
            f"({result.created} new to the state, {result.updated} changed), "
            f"{result.unchanged} unchanged, {result.failed} refused, {seconds:.2f} s "
            "(nothing was sent)"
        )
    if result.unchanged:
        skipped = f", unchanged {result.unchanged}{skipped}"
    if dry_run and read:
        # Records refused before sending are never read at HubSpot.
        looked = result.created + result.updated + result.skipped
        done = (
            "HubSpot's records were read; nothing was written" if looked else "nothing was written"
        )
        return (
            f"dry run: {result.created} records would be created, {result.updated} updated"
            f"{skipped}, {result.failed} refused, {seconds:.2f} s ({done})"
        )
    if dry_run:
        return (
            f"dry run: {result.total - result.failed} records would be sent, "
            f"{result.failed} refused, {seconds:.2f} s (nothing was sent)"
        )
    associated = ""
    if result.associated or result.not_associated:
        associated = f"; associated {result.associated}"
        if result.not_associated:
            associated += f", not associated {len(result.not_associated)}"
    return (
        f"created {result.created}, updated {result.updated}{skipped}, failed {result.failed} "
        f"of {result.total} records in {seconds:.2f} s ({rate:,.0f} records/s){associated}"
    )


def dry_run(
    hs: HubSpot | None, records: Iterator[Any], args: argparse.Namespace, show: int, read: bool
) -> Any:
    """Checks every record and sends no write: with a token, against the portal's property
    definitions too, and reading each record's contact (one read per 100 records) to tell
    which would be created, updated or skipped; without one (``hs`` None) by conversion
    alone. Shows the first records as they would be sent, then each cause of failure with
    its count and first records."""
    key = id_column(args)
    quiet = args.quiet
    converter = Converter(missing=args.missing)
    settings = _native.BulkOptions(
        id_property=args.id_property, id_field=key, associate=args.associations or None
    )

    def preview(rows: Iterator[Any]) -> Iterator[Any]:
        for index, record in enumerate(rows):
            if index < show and not quiet:
                try:
                    id, properties = converter.prepare(
                        record, email_field=key, id_property=args.id_property, object=args.object
                    )
                except (ValueError, TypeError):
                    pass
                else:
                    line = {"id": id, "idProperty": args.id_property, "properties": properties}
                    # An association's column is not sent: it names the record to associate.
                    named = {o: properties.pop(s[0], None) for o, s in args.associations.items()}
                    if any(v for v in named.values()):
                        line["associate"] = {o: v for o, v in named.items() if v}
                    print(json_line(line)[0])
            yield record

    if args.state:
        # What the state holds decides, with no request: the portal is its latest run's.
        with SyncState(args.state) as store:
            view = store.looking(args.object, args.id_property.strip())
            view.mirror = bool(args.mirror)
            result = converter.check_many(
                preview(records), settings, state=view, object=args.object
            )
            if args.mirror:
                why = _mirror.plan(view, result, args.max_archive)
                if why is not None:
                    print(f"{PROG}: a mirror run would archive nothing: {why}", file=sys.stderr)
    elif hs is None:
        result = converter.check_many(preview(records), settings, object=args.object)
    else:
        target: Any = face(hs, args.object)
        options: dict[str, Any] = (
            {
                "read": True,
                "mode": args.mode,
                "fill_empty": fill_empty(args),
                "labels": args.labels,
            }
            if read
            else {"definitions": False}
        )
        result = target.check_many(
            preview(records),
            id_property=args.id_property,
            id_field=key,
            associate=args.associations or None,
            **options,
        )
    if not quiet:
        causes(result.failures)
    return result


def archived(gone: list[tuple[str, int]], dry_run: bool, most: int = 10) -> None:
    """What a mirror run archived (or, dry, would archive): the count, then the first ids."""
    verb = "would archive" if dry_run else "archived"
    restorable = " (HubSpot keeps archived records restorable for 90 days)" if gone else ""
    print(f"{verb} {len(gone):,} record(s) the source no longer has{restorable}")
    for key, vid in gone[:most]:
        print(f"  {key} (HubSpot id {vid})")
    if len(gone) > most:
        print(f"  and {len(gone) - most:,} more")


def causes(failures: Any, most: int | None = None) -> None:
    """Each cause of failure with its count and first records, most frequent first: HubSpot's
    code and the property it names, or the exception the client refused a record with."""
    found: dict[tuple[str, str], list[int]] = {}
    said: dict[tuple[str, str], str] = {}
    for failure in failures:
        # Every value the definitions refuse in a record is a cause of its own (HubSpot's
        # answers name one at a time).
        errors = getattr(failure.error, "errors", None) or []
        named = [(e.code, e.name, e.message or "") for e in errors]
        for code, name, message in named or [(failure.code, None, "")]:
            key = (code or failure.code or type(failure.error).__name__, name or "")
            found.setdefault(key, []).append(failure.index)
            if not failure.code:
                # Refused by the client itself: its message says what the value was.
                said.setdefault(key, " ".join(failure.message.split())[:160])
            elif "is the label of" in message:
                # A column named by a property's label: the message says how to map it.
                said.setdefault(key, message)
    ranked = sorted(found.items(), key=lambda c: -len(c[1]))
    for key, indexes in ranked[:most]:
        first = ", ".join(map(str, indexes[:5]))
        more = ", ..." if len(indexes) > 5 else ""
        what = " ".join(key).strip()
        n = len(indexes)
        why = f"; the first: {said[key]}" if key in said else ""
        print(f"{what}: {n:,} record{'s' * (n != 1)} (record{'s' * (n != 1)} {first}{more}){why}")
    if most is not None and len(ranked) > most:
        print(f"... and {len(ranked) - most} more causes (--failures lists every record)")


def json_line(row: Any) -> tuple[str, bool]:
    """``row`` as one line of JSON, non-ASCII text as it is; text that is not valid Unicode
    (a lone surrogate, what JavaScript writes when it cuts an emoji in two) cannot be written
    as UTF-8, so such a row is written with ``\\u`` escapes instead, which read back as the
    same text. Returns the line and whether it had to be escaped."""
    line = json.dumps(row, ensure_ascii=False, default=str)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(row, ensure_ascii=True, default=str), True
    # Characters that some readers take for the end of a line (Python's splitlines, JavaScript)
    # are escaped: they can stand only inside strings, where the escape reads back the same.
    return line.translate(_LINE_BREAKS), False


_LINE_BREAKS = {c: f"\\u{c:04x}" for c in (0x85, 0x2028, 0x2029)}


class _Part:
    """A file being written beside its final name, renamed into place when complete. Each
    line goes to the file as it is written (no buffer), so that a second signal, which ends
    the process at once, keeps every line written so far (see :func:`keep_parts`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.temporary = f"{path}.{os.getpid()}.part"
        self.fd = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def write(self, line: str) -> None:
        os.write(self.fd, line.encode("utf-8", errors="backslashreplace") + b"\n")

    def finish(self) -> None:
        os.close(self.fd)
        os.replace(self.temporary, self.path)

    def abandon(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.temporary)


@contextlib.contextmanager
def _replacing(path: str) -> Iterator[_Part]:
    """Writes ``path`` whole, or (after a second signal) as far as it got: into a file beside
    it, renamed at the end."""
    part = _Part(path)
    PARTS.append(part)
    try:
        yield part
        part.finish()
    finally:
        PARTS.remove(part)
        part.abandon()


#: Files being written; a second signal, which ends the process at once, keeps what they hold.
PARTS: list[_Part] = []


def keep_parts(why: str) -> None:
    """Puts every file being written in its place as far as it got, with a last line saying
    where and why it stops. Called by the handler of a second signal, just before the
    process ends; each line already written is whole (one write each)."""
    for part in list(PARTS):
        row = {ERROR_FIELDS[0]: "INCOMPLETE", ERROR_FIELDS[1]: f"this file ends here: {why}"}
        with contextlib.suppress(OSError):
            part.write(json.dumps(row))
            part.finish()


def write_failures(
    path: str,
    source: Source,
    transform: Callable[[Any], Any],
    failures: list[Any],
    read: int,
    stopped: str | None,
) -> tuple[int, int]:
    """Every failed record, and (when the run stopped) every record never read, with its
    original content and the reason: running this file again completes the set. Returns how
    many records the input holds, and how many rows had to be written with escapes."""
    by_index = {f.index: f for f in failures}
    escaped = 0
    index = -1
    with _replacing(path) as out, source.open(again=True) as records:
        try:
            for index, record in enumerate(records):
                failure = by_index.get(index)
                if failure is not None:
                    code, message = failure.code, failure.message
                elif index >= read and stopped is not None:
                    code, message = "NOT_SENT", f"not sent: the run stopped ({stopped}) first"
                else:
                    continue
                if isinstance(record, BadRecord):
                    row: dict[str, Any] = {ERROR_FIELDS[2]: record.raw}
                else:
                    shaped = transform(record)
                    row = shaped if isinstance(shaped, dict) else {}
                    row = {k: v for k, v in row.items() if v is not None}
                row[ERROR_FIELDS[0]] = code
                row[ERROR_FIELDS[1]] = message
                line, was_escaped = json_line(row)
                escaped += was_escaped
                out.write(line)
        except InputError as e:
            # The input cannot be read past this point: say so where the records would be.
            row = {ERROR_FIELDS[0]: "UNREADABLE", ERROR_FIELDS[1]: f"not read: {e}"}
            out.write(json_line(row)[0])
    return index + 1, escaped


def count_records(source: Source) -> int | None:
    """How many records the input holds (read again from the start), None if it cannot be
    read to the end."""
    count = 0
    try:
        with source.open(again=True) as records:
            for _ in records:
                count += 1
    except InputError:
        return None
    return count


def write_report(
    path: str,
    args: argparse.Namespace,
    result: Any,
    seconds: float,
    stopped: str | None,
    in_input: int | None,
) -> None:
    """The run as JSON. ``total`` counts the records of the input (``read`` of them were read
    before the run stopped; the others are ``not_read``), so that the counts add up whatever
    stopped the run; ``in_input`` is None when the input could not be read to its end."""
    total = result.total if in_input is None else max(in_input, result.total)
    report = {
        "input": args.input,
        "stopped": stopped,
        "dry_run": args.dry_run,
        "fake": args.fake or args.demo,
        "total": total,
        "read": result.total,
        "not_read": total - result.total,
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "skipped": result.skipped,
        "failed": result.failed,
        "seconds": round(seconds, 3),
        "records_per_second": round(result.total / seconds, 1) if seconds > 0 else None,
        "failures": [
            {"index": f.index, "email": f.email, "code": f.code, "message": f.message}
            for f in result.failures
        ],
        "skips": [{"index": s.index, "id": s.id, "code": s.code} for s in result.skips],
    }
    with _replacing(path) as out:
        # ASCII only: every text, whatever it holds, survives the trip.
        for line in json.dumps(report, indent=2).splitlines():
            out.write(line)
