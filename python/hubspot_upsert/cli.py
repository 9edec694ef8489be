"""The ``hubspot-upsert`` command: a CSV or JSON Lines file of contacts into HubSpot.

Every input row ends in one of two places: landed at HubSpot, or in the failures file with its
original content and the reason, whatever stops the run.

Exit status: 0 when every record landed, 1 when some failed, 2 for usage and set-up errors
(missing token, unreadable file, unknown column), 3 when the run failed (HubSpot or the network
beyond the retries), 130 for SIGINT (Ctrl-C) and 143 for SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, Literal, NoReturn

from . import AuthenticationError, HubSpot, HubSpotError, PermissionDeniedError, __version__
from ._client import TOKEN_ENV
from ._inputs import FORMATS, BadRecord, InputError, Source

PROG = "hubspot-upsert"
#: Fields a failures file adds to each record; they are never sent as properties.
#: ``__line`` is the original text of a row that could not be read as a record.
ERROR_FIELDS = ("__error_code", "__error_message", "__line")
#: Exit statuses.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RUN = 0, 1, 2, 3


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
            "every row lands or is listed in --failures with its reason, whatever stops the run.\n"
            "exit status: 0 all records landed, 1 some failed, 2 usage or set-up error,\n"
            "3 the run failed (HubSpot or the network beyond the retries), 130 interrupted\n"
            "(SIGINT), 143 stopped (SIGTERM). The token is read from the environment only: a\n"
            "token on the command line would stay in shell history and in `ps`."
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
        "--encoding",
        help="the input's text encoding, e.g. latin-1 or cp1252 (default: UTF-8, or UTF-16 "
        "when a byte-order mark says so)",
    )
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
        "--api-version",
        metavar="VERSION",
        help="HubSpot's API version: a date such as 2026-09, or legacy (default: the client's)",
    )
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


# -- columns -------------------------------------------------------------------------------


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
    _PARTS.append(temporary)
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            yield out
        os.replace(temporary, path)
    finally:
        _PARTS.remove(temporary)
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


#: Files being written, removed if a second signal ends the process at once.
_PARTS: list[str] = []


def _write_failures(
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


def _write_report(
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
    options: dict[str, Any] = {"missing": missing, "api_version": args.api_version}
    if args.base_url:
        options["base_url"] = args.base_url
    try:
        return HubSpot(token, **options)
    except ValueError as e:
        raise UsageError(str(e)) from None


class Stopped(BaseException):
    """SIGTERM (or another stop signal) arrived: the run ends as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _exit_at_once(signum: int, frame: object) -> None:
    """A second signal while the run shuts down: leave now, with no file half-written."""
    for part in list(_PARTS):
        with contextlib.suppress(OSError):
            os.remove(part)
    os._exit(128 + signum)


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
    source = Source(args.input, args.format, args.delimiter, args.encoding, _header_check(args))
    transform = _transform(args)
    status = EXIT_OK
    stopped: str | None = None
    with contextlib.ExitStack() as stack:
        hs = _client(args, stack)
        if args.demo and not args.quiet:
            print(f"demo: {args.input} into a fake HubSpot at {hs.base_url}", file=sys.stderr)
        start = time.monotonic()
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
                except (AuthenticationError, PermissionDeniedError) as e:
                    raise UsageError(f"HubSpot refused the token: {e}") from None
                except (KeyboardInterrupt, Stopped, HubSpotError, InputError, UsageError) as e:
                    result = getattr(e, "bulk_result", None)
                    if result is None:
                        raise
                    # From here a second signal ends the process at once.
                    for signum in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(signum, _exit_at_once)
                    if isinstance(e, KeyboardInterrupt):
                        stopped, status = "interrupted", 130
                    elif isinstance(e, Stopped):
                        stopped, status = f"stopped by {e}", 128 + e.signum
                    elif isinstance(e, HubSpotError):
                        stopped, status = f"failed: {e}", EXIT_RUN
                    else:
                        stopped, status = f"the input failed: {e}", EXIT_USAGE
                    with contextlib.suppress(InputError):
                        source.drain()
        seconds = time.monotonic() - start
    if not args.quiet:
        print(_summary(result, seconds, args.dry_run))
    if stopped is not None:
        unread = " and every record not read" if args.failures else ""
        print(
            f"{PROG}: the run {stopped}; the summary above is what landed; "
            f"the failures file lists the rest{unread}"
            if args.failures
            else f"{PROG}: the run {stopped}; the summary above is what landed",
            file=sys.stderr,
        )
    if args.failures:
        _write_failures(
            args.failures, source, transform, list(result.failures), result.total, stopped
        )
    if args.report:
        _write_report(args.report, args, result, seconds, stopped)
    if status != EXIT_OK:
        return status
    return EXIT_FAILED if result.failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must work even when a shell started this with SIGINT ignored; SIGTERM (what
        # Airflow, Kubernetes, systemd and CI runners send) ends the run the same way.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _stop_on)
    parser = _parser()

    def one_line_error(message: str) -> NoReturn:
        _fail(f"{message} (see {PROG} --help)")

    parser.error = one_line_error  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (UsageError, InputError) as e:
        _fail(str(e))
    except HubSpotError as e:
        _fail(str(e), EXIT_RUN)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Stopped as e:
        print(f"{PROG}: stopped by {e}", file=sys.stderr)
        return 128 + e.signum


if __name__ == "__main__":
    sys.exit(main())
