"""The options, input and progress adapters of every face's ``create_or_update_many``.

Records may be any iterable of mappings (consumed lazily), a pandas DataFrame or a polars
DataFrame; neither library is imported unless such an object is passed.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from . import _native

if TYPE_CHECKING:
    from ._state import SyncState

ProgressCallback = Callable[[int, "int | None"], object]

#: ``associate=``: for each object type to associate records with, the field of each record
#: holding the associated record's key and the property of that type the key is a value of,
#: and optionally the association label ("Primary", one the portal defined).
Associate = Mapping[str, "tuple[str, str] | tuple[str, str, str]"]


def refusals(result: Any) -> list[Any]:
    """A ``BulkResult``'s records that did not end as asked, in input order: those refused, and
    those that landed but were not associated."""
    return sorted([*result.failures, *result.not_associated], key=lambda f: f.index)


class _Options(TypedDict, total=False):
    """What ``create_or_update_many`` and ``check_many`` both take (see
    :meth:`HubSpot.create_or_update_many`)."""

    id_property: str
    id_field: str | None
    mode: Literal["upsert", "update", "create"]
    fill_empty: bool | str | Iterable[str]
    labels: bool
    state: SyncState | str | os.PathLike[str] | None
    associate: Associate | None
    mirror: bool
    max_archive: float


class ManyOptions(_Options, total=False):
    """The keyword options of every face's ``create_or_update_many``."""

    progress: bool | ProgressCallback | None
    keep: Literal["all", "failures"]
    max_in_flight: int
    full: bool


class CheckOptions(_Options, total=False):
    """The keyword options of every face's ``check_many``."""

    definitions: bool
    read: bool


#: What a run takes besides its options: objects of the caller's, not settings.
_OBJECTS = ("state", "progress", "definitions", "read")


def options(
    given: Mapping[str, Any], declared: type[Mapping[str, Any]], method: str, **forced: Any
) -> tuple[_native.BulkOptions, Any]:
    """A run's keyword options read once: the native options (every value checked, in Rust,
    before anything is read or sent) and the sync state. ``declared`` is the TypedDict of
    what ``method`` takes; any other name is refused as Python refuses an unknown keyword."""
    names = declared.__optional_keys__  # type: ignore[attr-defined]
    for name in given:
        if name not in names:
            raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")
    settings = {k: v for k, v in given.items() if k not in _OBJECTS}
    return _native.BulkOptions(**{**settings, **forced}), given.get("state")


_FRAME_CHUNK = 1000


def _type_of(obj: object) -> tuple[str, str]:
    cls = type(obj)
    return cls.__module__.split(".")[0], cls.__name__


def records_and_total(records: object) -> tuple[Iterator[Any], int | None]:
    """An iterator over the records, and their number when it is known in advance."""
    module, name = _type_of(records)
    if module == "pandas" and name == "DataFrame":
        frame: Any = records
        return _pandas_rows(frame), len(frame)
    if module == "polars" and name == "DataFrame":
        pl_frame: Any = records
        return iter(pl_frame.iter_rows(named=True)), len(pl_frame)
    if isinstance(records, (str, bytes, bytearray)) or isinstance(records, Mapping):
        raise TypeError(
            "records must be an iterable of mappings (a list of dicts, a generator, a "
            f"DataFrame), got a single {type(records).__name__}"
        )
    if not isinstance(records, Iterable):
        raise TypeError(f"records must be an iterable of mappings, got {type(records).__name__}")
    total = len(records) if hasattr(records, "__len__") else None  # type: ignore[arg-type]
    return iter(records), total


def _pandas_rows(frame: Any) -> Iterator[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        # A record keeps one value per name: the others would be lost without a word.
        raise ValueError(
            f"the DataFrame has duplicate column names ({', '.join(map(repr, twice))}): "
            "rename or drop them first"
        )
    return _pandas_chunks(frame, columns)


def _pandas_chunks(frame: Any, columns: list[str]) -> Iterator[dict[str, Any]]:
    for start in range(0, len(frame), _FRAME_CHUNK):
        chunk = frame.iloc[start : start + _FRAME_CHUNK]
        for row in chunk.itertuples(index=False, name=None):
            yield dict(zip(columns, row, strict=True))


class _StderrLine:
    """A progress line on stderr, for when tqdm is not installed."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.start = time.monotonic()
        self.last = 0.0

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < 0.5:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        end = "\n" if final else ""
        sys.stderr.write(f"\rhubspot-upsert: {done}{of} records, {rate:,.0f}/s{end}")
        sys.stderr.flush()


def progress_reporter(
    progress: bool | ProgressCallback | None, total: int | None
) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A callback for the native loop (``done`` so far) and one to call at the end."""
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        user = progress

        def call_user(done: int) -> None:
            user(done, total)

        return call_user, lambda: None
    if progress is not True:
        raise TypeError(f"progress must be True, False or a callable, got {progress!r}")
    try:
        with warnings.catch_warnings():
            # In a notebook without ipywidgets tqdm says so (TqdmWarning) and draws a text
            # bar instead; that bar is all that is wanted, the warning is noise.
            warnings.simplefilter("ignore")
            tqdm = importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        line = _StderrLine(total)
        state = {"done": 0}

        def on_line(done: int) -> None:
            state["done"] = done
            line(done)

        return on_line, lambda: line(state["done"], final=True)
    bar = tqdm(total=total, unit="rec", desc="hubspot-upsert")

    def on_bar(done: int) -> None:
        bar.update(done - bar.n)

    return on_bar, bar.close
