"""The run: the client it talks to, the signals that stop it, and what it returns."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from importlib import resources
from typing import Any, Literal, NoReturn

from .. import AuthenticationError, HubSpot, HubSpotError, OAuth, PermissionDeniedError
from .._bulk import refusals
from .._client import TOKEN_ENV
from .._mirror import MirrorRefusedError
from .._native import object_name
from .._objects import face
from .._state import SyncState, SyncStateError
from . import _reports as reports
from ._args import (
    PROG,
    UsageError,
    associate,
    fill_empty,
    header_check,
    id_column,
    make_parser,
    make_transform,
)
from ._inputs import InputError, Source

#: Exit statuses.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_RUN = 0, 1, 2, 3


def _fail(message: str, status: int = 2) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(status)


def _reads_definitions(args: argparse.Namespace) -> bool:
    """Whether a dry run checks records against the portal's property definitions: with a
    token (or an OAuth app's credentials), and not in a rehearsal; otherwise it checks
    conversion only and makes no request."""
    try:
        credentials = bool(_token(args)) or OAuth.from_env() is not None
    except ValueError:
        credentials = False
    return credentials and not (args.fake or args.demo)


def _token(args: argparse.Namespace) -> str:
    return os.environ.get(args.token_env, "").strip()


def _client(args: argparse.Namespace, stack: contextlib.ExitStack) -> HubSpot | None:
    """The client the run sends with; None for a dry run without credentials, which converts
    and checks records with no client at all."""
    missing: Literal["skip", "clear"] = args.missing
    if args.fake or args.demo:
        from ..testing import FakeHubSpot

        # A rehearsal takes any column as a property: it cannot know the real portal's.
        fake = stack.enter_context(
            FakeHubSpot(strict_properties=not args.fake, properties_scope=not args.fake)
        )
        return HubSpot(fake.token, base_url=fake.url, missing=missing)
    token = _token(args)
    options: dict[str, Any] = {"missing": missing, "api_version": args.api_version}
    if args.base_url:
        options["base_url"] = args.base_url
    try:
        oauth = None if token else OAuth.from_env()
    except ValueError as e:
        raise UsageError(str(e)) from None
    if oauth is not None:
        options["oauth"] = oauth
    elif not token and args.dry_run:
        return None
    elif not token:
        raise UsageError(
            f"no access token: set {args.token_env} to a HubSpot access token (a service key "
            "or private app token)"
            + (
                " (or name another variable with --token-env)"
                if args.token_env == TOKEN_ENV
                else ""
            )
            + "; an OAuth app sets HUBSPOT_CLIENT_ID, HUBSPOT_CLIENT_SECRET and "
            "HUBSPOT_REFRESH_TOKEN"
        )
    try:
        return HubSpot(token or None, **options)
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
    """A second signal while the run shuts down: leave now, keeping what the files being
    written hold so far (their last line says where they stop)."""
    reports.keep_parts(f"a second {signal.Signals(signum).name} ended the command while writing")
    os._exit(128 + signum)


def _settle(args: argparse.Namespace) -> None:
    """The object type and the associations, checked."""
    try:
        args.object = object_name(args.object)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.object != "contacts" and args.id_property == "email":
        raise UsageError(
            f"--object {args.object} needs --id-property: a unique property of {args.object} "
            "(HubSpot matches no other object on email), or hs_object_id"
        )
    args.associations = associate(args)


def upsert_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``create_or_update_many`` a command line sets."""
    return {
        "id_property": args.id_property,
        "id_field": id_column(args),
        "mode": args.mode,
        "fill_empty": fill_empty(args),
        "labels": args.labels,
        "max_in_flight": args.max_in_flight,
        "state": args.state,
        "full": args.full,
        "associate": args.associations or None,
        "mirror": args.mirror,
        "max_archive": args.max_archive,
    }


@contextlib.contextmanager
def file_records(
    path: str, options: Sequence[str] = ()
) -> Iterator[tuple[str, Iterator[Any], dict[str, Any]]]:
    """A file read as the command reads it, with the command's options for reading it and for
    the run (``--labels``, ``--decimal ,``, ``--object companies``, ...): the object type, the
    records, and the options of ``create_or_update_many`` they set. For callers in Python (the
    Airflow operator); errors are :class:`UsageError` and :class:`InputError`."""
    parser = make_parser()
    parser.error = _raise_usage  # type: ignore[method-assign]
    args = parser.parse_args([*options, "--", path])
    if args.demo or args.fake or args.status or args.dry_run:
        raise UsageError("--demo, --fake, --status and --dry-run are options of the command only")
    _settle(args)
    source = Source(args.input, args.format, args.delimiter, args.encoding, header_check(args))
    transform = make_transform(args)
    with source.open() as raw:
        yield args.object, (transform(r) for r in raw), upsert_options(args)


def _usage_message(message: str) -> str:
    """argparse's message, with only the option names of unrecognized arguments: a value given
    by mistake may be a secret."""
    head, sep, rest = message.partition("unrecognized arguments: ")
    if sep:
        named = [a.split("=")[0] for a in rest.split() if a.startswith("-")]
        message = f"{head}unrecognized arguments: {' '.join(named) or '(values not shown)'}"
    return message


def _raise_usage(message: str) -> NoReturn:
    raise UsageError(_usage_message(message))


def run(args: argparse.Namespace) -> int:
    if args.demo:
        if args.input:
            raise UsageError("--demo takes no input file")
        demo = resources.files("hubspot_upsert") / "data" / "demo_contacts.csv"
        args.input = str(demo)
        args.rename = [*args.rename, "First Name=firstname", "Last Name=lastname"]
    if not args.input and args.fill_empty not in (None, "*") and os.path.exists(args.fill_empty):
        raise UsageError(
            f"--fill-empty took the input file {args.fill_empty!r} as its columns: write "
            "--fill-empty=COLUMNS, or name the input before --fill-empty"
        )
    if (args.full or args.status or args.mirror) and not args.state:
        named = "--full" if args.full else "--status" if args.status else "--mirror"
        raise UsageError(f"{named} needs --state")
    if not 0 <= args.max_archive <= 1:
        raise UsageError(f"--max-archive is a share between 0 and 1, got {args.max_archive:g}")
    if args.status:
        if args.input:
            raise UsageError("--status takes no input file")
        with SyncState(args.state) as store:
            print(store.status())
        return EXIT_OK
    _settle(args)
    if args.state and (args.fake or args.demo):
        raise UsageError("--state keeps what a real portal holds: not with --fake or --demo")
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
    source = Source(args.input, args.format, args.delimiter, args.encoding, header_check(args))
    transform = make_transform(args)
    status, stopped = EXIT_OK, None
    with contextlib.ExitStack() as stack:
        hs = _client(args, stack)
        if args.demo and not args.quiet and hs is not None:
            print(f"demo: {args.input} into a fake HubSpot at {hs.base_url}", file=sys.stderr)
        start = time.monotonic()
        with source.open() as raw:
            records = (transform(r) for r in raw)
            if args.dry_run or hs is None:
                checked = _reads_definitions(args)
                result = reports.dry_run(hs, records, args, 5, checked)
            else:
                result, stopped, status = _send(args, hs, records, source)
        seconds = time.monotonic() - start
    passed_over = [f"{n:,} {what}" for what, n in sorted(source.ignored.items()) if n]
    if passed_over and not args.quiet:
        print(f"{PROG}: ignored {' and '.join(passed_over)}", file=sys.stderr)
    if not args.quiet:
        print(
            reports.summary(
                result, seconds, args.dry_run, _reads_definitions(args), bool(args.state)
            )
        )
        if not args.dry_run and result.failed:
            reports.causes(result.failures, most=10)
        if not args.dry_run and result.not_associated:
            print("not associated (these landed):")
            reports.causes(result.not_associated, most=10)
        if args.mirror and stopped is None:
            reports.archived(result.archived, args.dry_run)
    if stopped is not None:
        unread = " and every record not read" if args.failures else ""
        print(
            f"{PROG}: the run {stopped}; the summary above is what landed; "
            f"the failures file lists the rest{unread}"
            if args.failures
            else f"{PROG}: the run {stopped}; the summary above is what landed",
            file=sys.stderr,
        )
    in_input: int | None = result.total
    if args.failures:
        in_input, escaped = reports.write_failures(
            args.failures,
            source,
            transform,
            refusals(result),
            result.total,
            stopped,
        )
        if escaped:
            print(
                f"{PROG}: {escaped:,} rows of {args.failures} hold text that is not valid "
                "Unicode (a lone surrogate); they are written with \\u escapes",
                file=sys.stderr,
            )
    elif stopped is not None and args.report:
        in_input = reports.count_records(source)
    if args.report:
        reports.write_report(args.report, args, result, seconds, stopped, in_input)
    if status != EXIT_OK:
        return status
    return EXIT_FAILED if result.failed or result.not_associated else EXIT_OK


def _send(
    args: argparse.Namespace, hs: HubSpot, records: Iterator[Any], source: Source
) -> tuple[Any, str | None, int]:
    """The bulk run: its result, what stopped it (None if nothing did) and the exit status
    that says so."""
    show_bar = not args.quiet and sys.stderr.isatty()
    # A bar with a total shows percent done and the time left: a file is counted first (one
    # more read of it, only for a terminal).
    total = reports.count_records(source) if show_bar and source.path != "-" else None
    target: Any = face(hs, args.object)
    try:
        result = target.create_or_update_many(
            records if total is None else _Counted(records, total),
            progress=show_bar or None,
            keep="failures",
            **upsert_options(args),
        )
        return result, None, EXIT_OK
    except (AuthenticationError, PermissionDeniedError) as e:
        raise UsageError(f"HubSpot refused the token: {e}") from None
    except MirrorRefusedError as e:
        # The records landed; only the archive was refused.
        return e.bulk_result, f"archived nothing: {e}", EXIT_RUN
    except (KeyboardInterrupt, Stopped, HubSpotError, InputError, UsageError) as e:
        partial = getattr(e, "bulk_result", None)
        if partial is None:
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
        return partial, stopped, status


class _Counted:
    """Records whose number is known in advance."""

    def __init__(self, records: Iterator[Any], total: int) -> None:
        self.records, self.total = records, total

    def __iter__(self) -> Iterator[Any]:
        return self.records

    def __len__(self) -> int:
        return self.total


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must work even when a shell started this with SIGINT ignored; SIGTERM (what
        # Airflow, Kubernetes, systemd and CI runners send) ends the run the same way.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _stop_on)
    # Text that is not valid Unicode (a lone surrogate in a JSON value) is shown escaped,
    # never a reason for the command to fail.
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    parser = make_parser()

    def one_line_error(message: str) -> NoReturn:
        _fail(f"{_usage_message(message)} (see {PROG} --help)")

    parser.error = one_line_error  # type: ignore[method-assign]
    try:
        args = parser.parse_args(argv)
    except UsageError as e:
        _fail(str(e))
    try:
        return run(args)
    except (UsageError, InputError, SyncStateError) as e:
        _fail(str(e))
    except HubSpotError as e:
        _fail(str(e), EXIT_RUN)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Stopped as e:
        print(f"{PROG}: stopped by {e}", file=sys.stderr)
        return 128 + e.signum
