"""Input files of the ``hubspot-upsert`` command: CSV, JSON Lines or a JSON array, from a file
or standard input, as a stream of records.

One record per row, always: the text is decoded line by line (the encoding from ``--encoding``,
else a byte-order mark, else UTF-8), the CSV delimiter is sniffed on whole lines, and a row
that does not fit its header becomes a record that fails with the reason, never a shifted or
padded one. A byte that does not decode stops the reading with its line and column.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import json
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

FORMATS = ("csv", "jsonl", "json")
#: How much of a CSV file the delimiter is sniffed on (whole lines, at least this much).
SNIFF_BYTES = 64 * 1024
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class InputError(Exception):
    """The input cannot be read as what it says it is (an undecodable byte, a CSV header with
    duplicate or empty names): a usage error."""


class BadRecord(Mapping[str, Any]):
    """A row that could not be read as a record: converting it fails with ``problem``; ``raw``
    is its original text, for the failures file."""

    def __init__(self, problem: str, raw: str) -> None:
        self.problem = problem
        self.raw = raw

    def __getitem__(self, key: str) -> Any:
        raise ValueError(self.problem)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def encoding_of(head: bytes, given: str | None) -> str:
    """The encoding to read with: ``given`` (checked), else the byte-order mark's, else UTF-8."""
    if given:
        try:
            return codecs.lookup(given).name
        except LookupError:
            raise InputError(
                f"unknown encoding {given!r} (try utf-8, latin-1, cp1252, utf-16)"
            ) from None
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return "utf-8"


def _splits_on_newline(encoding: str) -> bool:
    """Whether the byte 0x0A is a line end wherever it occurs (not so in UTF-16 and UTF-32)."""
    return "\n".encode(encoding) == b"\n" and not encoding.startswith(("utf-16", "utf-32"))


def text_lines(stream: IO[bytes], encoding: str) -> Iterator[str]:
    """The stream's lines as text, line ends kept. A byte that does not decode raises
    :class:`InputError` naming its line and column."""
    if not _splits_on_newline(encoding):
        text = io.TextIOWrapper(stream, encoding=encoding, newline="")
        number = 0
        try:
            for number, line in enumerate(text, start=1):  # noqa: B007
                yield line
        except UnicodeDecodeError as e:
            raise InputError(
                f"near line {number + 1}: the input is not valid {encoding} ({e.reason}); "
                "name its encoding with --encoding"
            ) from None
        finally:
            text.detach()
        return
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError as e:
            column = len(raw[: e.start].decode(encoding, errors="replace")) + 1
            raise InputError(
                f"line {number}, column {column}: the byte 0x{raw[e.start]:02X} is not valid "
                f"{encoding}; name the file's encoding with --encoding (latin-1, cp1252, ...)"
            ) from None
        if number == 1 and encoding == "utf-8-sig":
            line = line.removeprefix("\ufeff")
        if "\r" in line.rstrip("\r\n"):
            # Classic Mac OS line ends (a CR alone): one line each.
            yield from (part for part in _BARE_CR.split(line) if part)
        else:
            yield line


#: Splits after a CR that no LF follows.
_BARE_CR = re.compile(r"(?<=\r)(?!\n)")
#: Excel's first line naming the delimiter, `sep=;`.
_EXCEL_SEP = re.compile(r"sep=(.)\r?\n?\Z", re.IGNORECASE)


def check_decodes(path: str, encoding: str) -> None:
    """Reads the whole file once, so that a byte that does not decode stops the command
    before anything is sent."""
    with open(path, "rb") as stream:
        for _ in text_lines(stream, encoding):
            pass


def _csv_text(cells: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(cells)
    return out.getvalue()


def _header(cells: list[str]) -> list[str]:
    names = [c.strip() for c in cells]
    problems = []
    empty = [str(i + 1) for i, n in enumerate(names) if not n]
    if empty:
        problems.append(f"empty names in column {', '.join(empty)}")
    seen: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if n:
            seen.setdefault(n, []).append(i + 1)
    for name, at in seen.items():
        if len(at) > 1:
            problems.append(f"{name!r} in columns {', '.join(map(str, at))}")
    if problems:
        raise InputError(
            f"the CSV header has duplicate or empty column names ({'; '.join(problems)}): "
            "each column must be named once"
        )
    return names


def csv_records(
    lines: Iterator[str],
    delimiter: str | None,
    check: Callable[[list[str]], None],
    ignored: Counter[str] | None = None,
) -> Iterator[Mapping[str, Any]]:
    """The CSV's records. ``ignored`` counts what is passed over: rows whose cells are all
    empty, and unnamed columns after the last named one (a spreadsheet's empty columns), whose
    cells must be empty."""
    # A value longer than HubSpot keeps fails as a record; the reader itself sets no limit.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    first_line = next(lines, None)
    said = _EXCEL_SEP.match(first_line or "")
    if said is not None:
        # Excel's "sep=;" line: it names the delimiter, and is not the header.
        delimiter = delimiter or said.group(1)
    elif first_line is not None:
        lines = itertools.chain([first_line], lines)
    if delimiter is None:
        sample: list[str] = []
        size = 0
        for line in lines:
            sample.append(line)
            size += len(line)
            if size >= SNIFF_BYTES:
                break
        try:
            delimiter = csv.Sniffer().sniff("".join(sample), delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
        lines = itertools.chain(sample, lines)
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        yield from _csv_rows(reader, delimiter, check, Counter() if ignored is None else ignored)
    except csv.Error as e:
        raise InputError(f"line {reader.line_num}: the CSV cannot be read: {e}") from None


def _csv_rows(
    reader: Any, delimiter: str, check: Callable[[list[str]], None], ignored: Counter[str]
) -> Iterator[Mapping[str, Any]]:
    first = next(reader, None)
    if first is None:
        raise InputError("the CSV input is empty: it has no header")
    named = len(first)
    while named > 0 and not first[named - 1].strip():
        named -= 1  # trailing unnamed columns, as a spreadsheet exports its empty ones
    ignored["unnamed empty columns"] = len(first) - named
    header = _header(first[:named])
    check(header)
    for row in reader:
        if not any(cell.strip() for cell in row):
            if row:
                ignored["all-empty rows"] += 1
            continue  # a blank line, or a row of empty cells
        if named <= len(row) <= len(first) and not any(c.strip() for c in row[named:]):
            row = row[:named]
        if len(row) != len(header):
            yield BadRecord(
                f"line {reader.line_num}: {len(row)} cells where the header has {len(header)} "
                "(an unquoted delimiter in a value?)",
                _csv_text(row, delimiter),
            )
            continue
        yield dict(zip(header, row, strict=True))


def jsonl_records(lines: Iterator[str]) -> Iterator[Mapping[str, Any]]:
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:
            # Not JSON, or JSON that Python cannot hold (an integer of thousands of digits, an
            # array nested past the recursion limit): this record fails, the run goes on.
            yield BadRecord(f"line {number} cannot be read as JSON: {_unreadable(e)}", text)
            continue
        if not isinstance(value, dict):
            yield BadRecord(f"line {number} is a JSON {type(value).__name__}, not an object", text)
            continue
        yield value


def _unreadable(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "it is nested too deeply"
    return str(e) or type(e).__name__


def json_records(lines: Iterator[str]) -> Iterator[Any]:
    try:
        value = json.loads("".join(lines))
    except (ValueError, RecursionError) as e:
        raise InputError(f"the input cannot be read as JSON: {_unreadable(e)}") from None
    if not isinstance(value, list):
        raise InputError("a JSON input must be an array of objects (or use JSON Lines)")
    for item in value:
        yield (
            item
            if isinstance(item, dict)
            else BadRecord(f"a JSON {type(item).__name__}, not an object", json.dumps(item))
        )


def guess_format(name: str, head: bytes, encoding: str) -> str:
    lower = name.lower()
    for ending, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl")):
        if lower.endswith(ending):
            return fmt
    if lower.endswith(".json"):
        return "json"
    text = head.decode(encoding, errors="ignore").lstrip("\ufeff \t\r\n")
    return {"[": "json", "{": "jsonl"}.get(text[:1], "csv")


class _Tee(io.RawIOBase):
    """Reads from one binary stream and copies what it read into another."""

    def __init__(self, source: IO[bytes], copy: IO[bytes]) -> None:
        self.source, self.copy = source, copy

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        if not data:
            return 0
        self.copy.write(data)
        buffer[: len(data)] = data
        return len(data)


class Source:
    """The input, read as a stream of raw records. Standard input is copied aside as it is
    read, so that failed and unread records can be written out afterwards."""

    def __init__(
        self,
        path: str,
        fmt: str | None,
        delimiter: str | None,
        encoding: str | None = None,
        check_header: Callable[[list[str]], None] = lambda _: None,
    ) -> None:
        self.path = path
        self.delimiter = delimiter
        self.check_header = check_header
        #: What the first read passed over (all-empty rows, unnamed empty columns), by kind.
        self.ignored: Counter[str] = Counter()
        self.copy: IO[bytes] | None = None
        if path == "-":
            self.copy = tempfile.TemporaryFile()
            self._stdin: IO[bytes] = io.BufferedReader(_Tee(sys.stdin.buffer, self.copy))
            head = self._stdin.peek(4096)[:4096]
            self.name = "<stdin>"
        else:
            try:
                with open(path, "rb") as f:
                    head = f.read(4096)
            except OSError as e:
                raise InputError(f"cannot read {path}: {e.strerror or e}") from None
            self.name = path
        self.encoding = encoding_of(head, encoding)
        self.format = fmt or guess_format(self.name, head, self.encoding)
        if path != "-":
            check_decodes(path, self.encoding)

    def drain(self) -> None:
        """Reads the rest of standard input into the copy (after a stop), so that the records
        never read can be listed too."""
        if self.path == "-":
            while self._stdin.read(1 << 16):
                pass

    @contextlib.contextmanager
    def open(self, again: bool = False) -> Iterator[Iterator[Any]]:
        if self.path == "-" and not again:
            stream: IO[bytes] = self._stdin
        elif self.path == "-":
            assert self.copy is not None
            self.copy.seek(0)
            stream = self.copy
        else:
            stream = open(self.path, "rb")
        try:
            lines = text_lines(stream, self.encoding)
            if self.format == "csv":
                counts = None if again else self.ignored
                yield csv_records(lines, self.delimiter, self.check_header, counts)
            elif self.format == "jsonl":
                yield jsonl_records(lines)
            else:
                yield json_records(lines)
        finally:
            if self.path != "-":
                stream.close()
