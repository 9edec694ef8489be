"""A :class:`BulkResult` as a table: one row per kept record for pandas or polars, and the
HTML a notebook shows for it."""

from __future__ import annotations

import html
import importlib
from typing import Any

COLUMNS = ("index", "id", "email", "outcome", "vid", "code", "message")


def columns(result: Any) -> dict[str, list[Any]]:
    """The kept outcomes, column by column: ``outcome`` is created, updated, skipped or
    failed; ``vid`` is None where nothing landed, ``code`` and ``message`` where nothing
    failed or was skipped."""
    from ._errors import RecordError
    from ._native import SkippedRecord

    out: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for position, o in enumerate(result):
        row: tuple[Any, ...]
        if isinstance(o, RecordError):
            row = (o.index, o.email, o.email, "failed", None, o.code, o.message)
        elif isinstance(o, SkippedRecord):
            row = (o.index, o.id, None, "skipped", None, o.code, o.reason)
        else:
            # With keep="all" every record read has its outcome, in input order.
            outcome = "created" if o.is_new else "updated"
            row = (position, o.id, o.email, outcome, o.vid, None, None)
        for name, value in zip(COLUMNS, row, strict=True):
            out[name].append(value)
    return out


def to_pandas(result: Any) -> Any:
    pandas = importlib.import_module("pandas")
    frame = pandas.DataFrame(columns(result), columns=list(COLUMNS))
    frame["vid"] = frame["vid"].astype("Int64")
    return frame


def to_polars(result: Any) -> Any:
    polars = importlib.import_module("polars")
    data = columns(result)
    schema = {
        "index": polars.Int64,
        "id": polars.Utf8,
        "email": polars.Utf8,
        "outcome": polars.Utf8,
        "vid": polars.Int64,
        "code": polars.Utf8,
        "message": polars.Utf8,
    }
    return polars.DataFrame(data, schema=schema)


def repr_html(result: Any, shown: int = 5) -> str:
    """The counts, then the first failures with their codes and messages."""
    counts = [
        ("total", result.total),
        ("created", result.created),
        ("updated", result.updated),
        ("skipped", result.skipped),
        ("failed", result.failed),
    ]
    cells = "".join(f"<th>{name}</th>" for name, _ in counts)
    values = "".join(f"<td>{value:,}</td>" for _, value in counts)
    parts = [
        "<div><strong>BulkResult</strong>",
        f"<table><tr>{cells}</tr><tr>{values}</tr></table>",
    ]
    failures = result.failures[:shown]
    if failures:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (f.index, f.email or "", f.code or "", f.message)
            )
            + "</tr>"
            for f in failures
        )
        more = result.failed - len(failures)
        tail = f"<p>and {more:,} more failures</p>" if more > 0 else ""
        parts.append(
            "<table><tr><th>index</th><th>email</th><th>code</th><th>message</th></tr>"
            f"{rows}</table>{tail}"
        )
    parts.append("</div>")
    return "".join(parts)
