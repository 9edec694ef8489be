"""What a run leaves: the summary line, the dry run's preview and causes, the failures file
and the JSON report. Files are written whole or not at all."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

from .._client import HubSpot
from .._inputs import BadRecord, InputError, Source
from ._args import ERROR_FIELDS


def summary(result: Any, seconds: float, dry_run: bool = False) -> str:
    rate = result.total / seconds if seconds > 0 else 0.0
    if dry_run:
        return (
            f"dry run: {result.total - result.failed} records would be sent, "
            f"{result.failed} refused, {seconds:.2f} s (nothing was sent)"
        )
    return (
        f"created {result.created}, updated {result.updated}, failed {result.failed} "
        f"of {result.total} records in {seconds:.2f} s ({rate:,.0f} records/s)"
    )


def dry_run(
    hs: HubSpot, records: Iterator[Any], email: str, show: int, quiet: bool, definitions: bool
) -> Any:
    """Checks every record and sends no write: with a token, against the portal's property
    definitions too. Shows the first records as they would be sent, then each cause of failure
    with its count and first records."""

    def preview(rows: Iterator[Any]) -> Iterator[Any]:
        for index, record in enumerate(rows):
            if index < show and not quiet:
                try:
                    address, properties = hs.prepare(record, email)
                except (ValueError, TypeError):
                    pass
                else:
                    line = {"id": address, "idProperty": "email", "properties": properties}
                    print(json.dumps(line, ensure_ascii=False))
            yield record

    result = hs.check_many(preview(records), email, definitions=definitions)
    if not quiet:
        causes: dict[tuple[str, str], list[int]] = {}
        for failure in result.failures:
            errors = getattr(failure.error, "errors", None)
            name = errors[0].name if errors else None
            code = failure.code or type(failure.error).__name__
            causes.setdefault((code, name or ""), []).append(failure.index)
        for (code, name), indexes in sorted(causes.items(), key=lambda c: -len(c[1])):
            first = ", ".join(map(str, indexes[:5]))
            more = ", ..." if len(indexes) > 5 else ""
            what = f"{code} {name}".strip()
            print(f"{what}: {len(indexes):,} records (records {first}{more})")
    return result


@contextlib.contextmanager
def _replacing(path: str) -> Iterator[Any]:
    """Writes ``path`` whole or not at all: into a file beside it, renamed at the end."""
    temporary = f"{path}.{os.getpid()}.part"
    PARTS.append(temporary)
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            yield out
        os.replace(temporary, path)
    finally:
        PARTS.remove(temporary)
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


#: Files being written, removed if a second signal ends the process at once.
PARTS: list[str] = []


def write_failures(
    path: str,
    source: Source,
    transform: Callable[[Any], Any],
    failures: list[Any],
    read: int,
    stopped: str | None,
) -> None:
    """Every failed record, and (when the run stopped) every record never read, with its
    original content and the reason: running this file again completes the set."""
    by_index = {f.index: f for f in failures}
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
                out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        except InputError as e:
            # The input cannot be read past this point: say so where the records would be.
            row = {ERROR_FIELDS[0]: "UNREADABLE", ERROR_FIELDS[1]: f"not read: {e}"}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_report(
    path: str, args: argparse.Namespace, result: Any, seconds: float, stopped: str | None
) -> None:
    report = {
        "input": args.input,
        "stopped": stopped,
        "dry_run": args.dry_run,
        "fake": args.fake or args.demo,
        "total": result.total,
        "created": result.created,
        "updated": result.updated,
        "failed": result.failed,
        "seconds": round(seconds, 3),
        "records_per_second": round(result.total / seconds, 1) if seconds > 0 else None,
        "failures": [
            {"index": f.index, "email": f.email, "code": f.code, "message": f.message}
            for f in result.failures
        ],
    }
    with _replacing(path) as out:
        json.dump(report, out, indent=2)
        out.write("\n")
