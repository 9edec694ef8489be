"""The ``hubspot-upsert`` command: a CSV or JSON Lines file of contacts into HubSpot.

Exit status: 0 when every record landed, 1 when some failed, 2 for usage and set-up errors
(missing token, unreadable file, unknown column), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from typing import IO, Any, Literal, NoReturn

from . import AuthenticationError, HubSpot, HubSpotError, PermissionDeniedError, __version__
from ._client import TOKEN_ENV

PROG = "hubspot-upsert"
#: Fields a failures file adds to each record; they are never sent as properties.
ERROR_FIELDS = ("__error_code", "__error_message")
FORMATS = ("csv", "jsonl", "json")


class UsageError(Exception):
    """A problem with the command line or the set-up: exit status 2."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Create or update HubSpot contacts from a CSV, JSON Lines or JSON file, 100 per\n"
            "request, within HubSpot's rate limits. Each record's email says which contact;\n"
            "every other column is a contact property."
        ),
        epilog=(
            "examples:\n"
            "  hubspot-upsert contacts.csv                    token from HUBSPOT_ACCESS_TOKEN\n"
            '  hubspot-upsert contacts.jsonl --email-column "E-mail" '
            '--rename "First Name=firstname"\n'
            "  cat rows.jsonl | hubspot-upsert - --format jsonl\n"
            "  hubspot-upsert contacts.csv --dry-run          validate only; nothing is written\n"
            "  hubspot-upsert contacts.csv --fake             rehearse against a fake HubSpot\n"
            "  hubspot-upsert --demo                          sample data into a fake HubSpot\n"
            "\n"
            "exit status: 0 all records landed, 1 some failed, 2 usage or set-up error,\n"
            "130 interrupted. The token is read from the environment only: a token on the\n"
            "command line would stay in shell history and in `ps`."
        ),
    )
    parser.add_argument("input", nargs="?", help="the file to read, or - for standard input")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    src = parser.add_argument_group("input")
    src.add_argument(
        "--format",
        choices=FORMATS,
        help="csv, jsonl or json (default: from the file name; sniffed on standard input)",
    )
    src.add_argument("--delimiter", help="the CSV delimiter (default: sniffed)")
    src.add_argument(
        "--email-column",
        default="email",
        metavar="NAME",
        help="the column holding the email (default: email)",
    )
    src.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="send column OLD as property NEW (repeatable)",
    )
    src.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="COLUMNS",
        help="send only these columns (comma-separated, repeatable)",
    )
    src.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="COLUMNS",
        help="do not send these columns (comma-separated, repeatable)",
    )
    src.add_argument(
        "--empty",
        choices=("skip", "clears"),
        default="skip",
        help="empty cells: skip leaves the property as it is (default), clears empties it",
    )
    conn = parser.add_argument_group("connection")
    conn.add_argument(
        "--token-env",
        default=TOKEN_ENV,
        metavar="NAME",
        help=f"the environment variable holding the access token (default: {TOKEN_ENV})",
    )
    conn.add_argument("--base-url", help="HubSpot's address (a proxy, a regional host, a fake)")
    conn.add_argument(
        "--max-in-flight",
        type=int,
        default=64,
        help="most batches in flight at once (default: 64; the rate limit paces them)",
    )
    mode = parser.add_argument_group("mode")
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help=(
            "check every record and show what would be sent; with a token, against the "
            "portal's property definitions too (one read); nothing is written"
        ),
    )
    mode.add_argument(
        "--fake", action="store_true", help="send to a built-in fake HubSpot instead (rehearsal)"
    )
    mode.add_argument(
        "--demo", action="store_true", help="send bundled sample data to a built-in fake HubSpot"
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--failures",
        metavar="FILE",
        help="write each failed record, with its error, as JSON Lines this command reads again",
    )
    out.add_argument("--report", metavar="FILE", help="write a JSON summary of the run")
    out.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    out.add_argument("--verbose", action="store_true", help="log every request and retry")
    return parser


# -- reading records -----------------------------------------------------------------------


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


class _BadLine(Mapping[str, Any]):
    """A JSON line that could not be read: converting it fails with that error."""

    def __init__(self, number: int, problem: str) -> None:
        self.problem = f"line {number} is not a JSON object: {problem}"

    def __getitem__(self, key: str) -> Any:
        raise ValueError(self.problem)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _guess_format(name: str, head: bytes) -> str:
    lower = name.lower()
    for ending, fmt in ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl")):
        if lower.endswith(ending):
            return fmt
    if lower.endswith(".json"):
        return "json"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return {b"[": "json", b"{": "jsonl"}.get(first, "csv")


def _csv_records(
    stream: IO[bytes], delimiter: str | None, check: Callable[[list[str]], None]
) -> Iterator[dict[str, Any]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    if delimiter is None:
        sample = text.read(64 * 1024)
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
        source: Iterator[str] = _chain_text(sample, text)
    else:
        source = text
    reader = csv.DictReader(source, delimiter=delimiter)
    check(list(reader.fieldnames or []))
    for row in reader:
        row.pop(None, None)  # type: ignore[call-overload]  # cells beyond the header
        yield row


def _chain_text(sample: str, rest: IO[str]) -> Iterator[str]:
    yield from io.StringIO(sample, newline="")
    yield from rest


def _jsonl_records(stream: IO[bytes]) -> Iterator[Mapping[str, Any]]:
    for number, raw in enumerate(stream, start=1):
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace").strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            yield _BadLine(number, str(e))
            continue
        yield value if isinstance(value, dict) else _BadLine(number, type(value).__name__)


def _json_records(stream: IO[bytes]) -> Iterator[Any]:
    try:
        value = json.loads(stream.read().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"the input is not valid JSON: {e}") from None
    if not isinstance(value, list):
        raise UsageError("a JSON input must be an array of objects (or use JSON Lines)")
    yield from value


class Source:
    """The input file, read as a stream of raw records (stdin is copied aside as it is read,
    so that failed records can be written out afterwards)."""

    def __init__(
        self,
        path: str,
        fmt: str | None,
        delimiter: str | None,
        check_header: Callable[[list[str]], None] = lambda _: None,
    ) -> None:
        self.path = path
        self.delimiter = delimiter
        self.check_header = check_header
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
                raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
            self.name = path
        self.format = fmt or _guess_format(self.name, head)

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
            if self.format == "csv":
                yield _csv_records(stream, self.delimiter, self.check_header)
            elif self.format == "jsonl":
                yield _jsonl_records(stream)
            else:
                yield _json_records(stream)
        finally:
            if self.path != "-":
                stream.close()


def _columns(values: list[str]) -> set[str]:
    return {c.strip() for v in values for c in v.split(",") if c.strip()}


def _header_check(args: argparse.Namespace) -> Callable[[list[str]], None]:
    """Refuses a CSV header without the columns the command line names."""
    named = {args.email_column} | _columns(args.only) | _columns(args.skip)
    named |= {item.partition("=")[0].strip() for item in args.rename}

    def check(header: list[str]) -> None:
        if args.email_column not in header:
            raise UsageError(
                f"the input has no column {args.email_column!r} for the email "
                f"(columns: {', '.join(header)}); name it with --email-column"
            )
        unknown = sorted(named - set(header) - {""})
        if unknown:
            raise UsageError(f"the input has no column {', '.join(map(repr, unknown))}")

    return check


def _transform(args: argparse.Namespace) -> Callable[[Any], Any]:
    """Renames, --only, --skip and empty cells, applied to each raw record."""
    renames: dict[str, str] = {}
    for item in args.rename:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--rename takes OLD=NEW, got {item!r}")
        renames[old.strip()] = new.strip()
    only, skip = _columns(args.only), _columns(args.skip)
    email = args.email_column
    clears = args.empty == "clears"

    def transform(record: Any) -> Any:
        if not isinstance(record, dict):
            return record
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key in ERROR_FIELDS:
                continue
            if key != email:
                if (only and key not in only) or key in skip:
                    continue
                key = renames.get(key, key)
            if value == "" or value is None:
                if key == email:
                    value = None
                else:
                    value = "" if clears else None
            out[key] = value
        return out

    return transform


# -- running ---------------------------------------------------------------------------------


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(status)


def _summary(result: Any, seconds: float, dry_run: bool = False) -> str:
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


def _dry_run(
    hs: HubSpot, records: Iterator[Any], email: str, show: int, quiet: bool, definitions: bool
) -> Any:
    """Checks every record and sends no write: with a token, against the portal's property
    definitions too. Shows the first records as they would be sent, then each cause of failure
    with its count and first records."""

    def preview(rows: Iterator[Any]) -> Iterator[Any]:
        for index, record in enumerate(rows):
            if index < show and not quiet:
                try:
                    address, properties = hs._native.convert_record(record, email_field=email)
                except (ValueError, TypeError):
                    pass
                else:
                    line = {"id": address, "idProperty": "email", "properties": dict(properties)}
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


def _write_failures(
    path: str, source: Source, transform: Callable[[Any], Any], failures: list[Any]
) -> None:
    by_index = {f.index: f for f in failures}
    with open(path, "w", encoding="utf-8") as out, source.open(again=True) as records:
        for index, record in enumerate(records):
            failure = by_index.get(index)
            if failure is None:
                continue
            row = transform(record)
            if not isinstance(row, dict):
                row = {}
            row = {k: v for k, v in row.items() if v is not None}
            row[ERROR_FIELDS[0]] = failure.code
            row[ERROR_FIELDS[1]] = failure.message
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def _write_report(path: str, args: argparse.Namespace, result: Any, seconds: float) -> None:
    report = {
        "input": args.input,
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
    with open(path, "w", encoding="utf-8") as out:
        json.dump(report, out, indent=2)
        out.write("\n")


def _offline(args: argparse.Namespace) -> bool:
    """Whether the run talks to a built-in fake: a rehearsal, the demo, or a dry run without a
    token (one with a token reads the portal's property definitions, and writes nothing)."""
    return bool(args.fake or args.demo or (args.dry_run and not _token(args)))


def _token(args: argparse.Namespace) -> str:
    return os.environ.get(args.token_env, "").strip()


def _client(args: argparse.Namespace, stack: contextlib.ExitStack) -> HubSpot:
    missing: Literal["skip", "clear"] = "clear" if args.empty == "clears" else "skip"
    if _offline(args):
        from .testing import FakeHubSpot

        # A rehearsal takes any column as a property: it cannot know the real portal's.
        fake = stack.enter_context(
            FakeHubSpot(strict_properties=not args.fake, properties_scope=not args.fake)
        )
        return HubSpot(fake.token, base_url=fake.url, missing=missing)
    token = _token(args)
    if not token:
        raise UsageError(
            f"no access token: set {args.token_env} to a private app token"
            + (
                " (or name another variable with --token-env)"
                if args.token_env == TOKEN_ENV
                else ""
            )
        )
    options: dict[str, Any] = {"missing": missing}
    if args.base_url:
        options["base_url"] = args.base_url
    try:
        return HubSpot(token, **options)
    except ValueError as e:
        raise UsageError(str(e)) from None


def run(args: argparse.Namespace) -> int:
    if args.demo:
        if args.input:
            raise UsageError("--demo takes no input file")
        demo = resources.files("hubspot_upsert") / "data" / "demo_contacts.csv"
        args.input = str(demo)
        args.rename = [*args.rename, "First Name=firstname", "Last Name=lastname"]
    if not args.input:
        raise UsageError("name an input file (or - for standard input), or use --demo")
    if args.max_in_flight < 1:
        raise UsageError("--max-in-flight must be at least 1")
    if args.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger = logging.getLogger("hubspot_upsert")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    source = Source(args.input, args.format, args.delimiter, _header_check(args))
    transform = _transform(args)
    with contextlib.ExitStack() as stack:
        hs = _client(args, stack)
        if args.demo and not args.quiet:
            print(f"demo: {args.input} into a fake HubSpot at {hs.base_url}", file=sys.stderr)
        start = time.monotonic()
        interrupted = False
        with source.open() as raw:
            records = (transform(r) for r in raw)
            if args.dry_run:
                checked = not _offline(args)
                result = _dry_run(hs, records, args.email_column, 5, args.quiet, checked)
            else:
                show_bar = not args.quiet and sys.stderr.isatty()
                try:
                    result = hs.create_or_update_many(
                        records,
                        args.email_column,
                        progress=show_bar or None,
                        keep="failures",
                        max_in_flight=args.max_in_flight,
                    )
                except KeyboardInterrupt as e:
                    result = getattr(e, "bulk_result", None)
                    if result is None:
                        raise
                    interrupted = True
                except (AuthenticationError, PermissionDeniedError) as e:
                    raise UsageError(f"HubSpot refused the token: {e}") from None
                except HubSpotError as e:
                    result = getattr(e, "bulk_result", None)
                    if result is None:
                        raise
                    print(f"{PROG}: the run stopped: {e}", file=sys.stderr)
        seconds = time.monotonic() - start
    if not args.quiet:
        print(_summary(result, seconds, args.dry_run))
    if interrupted:
        print(f"{PROG}: interrupted; the summary above is what landed", file=sys.stderr)
    if args.failures:
        _write_failures(args.failures, source, transform, list(result.failures))
    if args.report:
        _write_report(args.report, args, result, seconds)
    if interrupted:
        return 130
    return 1 if result.failed else 0


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must work even when a shell started this with SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = _parser()

    def one_line_error(message: str) -> NoReturn:
        _fail(f"{message} (see {PROG} --help)")

    parser.error = one_line_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as e:
        _fail(str(e))
    except HubSpotError as e:
        _fail(str(e), 1)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
