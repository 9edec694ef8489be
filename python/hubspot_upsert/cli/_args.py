"""The command line: the options, and what they ask of each record (columns, renames, empty
cells)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from .. import __version__
from .._client import TOKEN_ENV
from ._inputs import FORMATS

PROG = "hubspot-upsert"
#: Fields a failures file adds to each record; they are never sent as properties.
#: ``__line`` is the original text of a row that could not be read as a record.
ERROR_FIELDS = ("__error_code", "__error_message", "__line")


class UsageError(Exception):
    """A problem with the command line or the set-up: exit status 2."""


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        # No abbreviations: `--token pat-...` must never be read as `--token-env pat-...`,
        # whose value a message would then repeat.
        allow_abbrev=False,
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
    _input_options(parser.add_argument_group("input"))
    _connection_options(parser.add_argument_group("connection"))
    _mode_and_output_options(parser)
    return parser


def _input_options(src: argparse._ArgumentGroup) -> None:
    src.add_argument(
        "--format",
        choices=FORMATS,
        help="csv, jsonl, json, parquet, arrow or xlsx (default: from the file name or its "
        "first bytes; sniffed on standard input)",
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
        "--id-property",
        default="email",
        metavar="PROPERTY",
        help="match records on this unique property instead of email (one whose definition "
        "has hasUniqueValue), or on hs_object_id, HubSpot's own id",
    )
    src.add_argument(
        "--object",
        default="contacts",
        metavar="TYPE",
        help="what the records are: contacts (default), companies, deals, tickets, or a custom "
        "object's name or type id (2-123456); other than contacts, --id-property is needed",
    )
    src.add_argument(
        "--id-column",
        metavar="NAME",
        help="the column holding each record's id (default: --email-column when matching on "
        "email, else the --id-property's own name)",
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
        "--labels",
        action="store_true",
        help="read a HubSpot export back: columns named by property labels (First Name), "
        "options by their labels (Marketing Qualified Lead); its read-only columns (Record "
        "ID, Create Date) are left out",
    )
    src.add_argument(
        "--decimal",
        metavar="MARK",
        help="the decimal mark of numbers in the input: . (default) or , (177289,33 and "
        "1.234,56 are then sent as 177289.33 and 1234.56)",
    )
    src.add_argument(
        "--missing",
        choices=("skip", "clear"),
        default="skip",
        help="empty cells: skip leaves the property as it is (default), clear empties it",
    )
    # The earlier spelling, `--empty clears`.
    src.add_argument(
        "--empty",
        dest="missing",
        choices=("skip", "clear"),
        type=lambda v: "clear" if v == "clears" else v,
        help=argparse.SUPPRESS,
    )


class _RefuseToken(argparse.Action):
    """``--token VALUE`` on the command line: refused (``ps``, shell history and CI logs keep
    command lines), without repeating the value."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        raise UsageError(
            f"{option} is not taken: a token on the command line is kept by ps, shell history "
            f"and CI logs; set {TOKEN_ENV} (or the variable --token-env names) instead"
        )


def _connection_options(conn: argparse._ArgumentGroup) -> None:
    for name in ("--token", "--access-token"):
        conn.add_argument(name, nargs="?", action=_RefuseToken, help=argparse.SUPPRESS)
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


def _mode_and_output_options(parser: argparse.ArgumentParser) -> None:
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
        "--mode",
        choices=("upsert", "update", "create"),
        default="upsert",
        help="upsert (default), update only contacts that exist, or create only those that "
        "do not; the others are skipped",
    )
    mode.add_argument(
        "--fill-empty",
        nargs="?",
        const="*",
        metavar="COLUMNS",
        help="write a value only where HubSpot's is empty: in these columns (comma-separated), "
        "or in every column when none are named",
    )
    mode.add_argument(
        "--associate",
        action="append",
        default=[],
        metavar="OBJECT=COLUMN:PROPERTY[@LABEL]",
        help="associate each record that lands with the OBJECT record (companies, deals...) "
        "whose unique PROPERTY (or hs_object_id) is the row's COLUMN, with the association "
        "label after '@' if one is given (OBJECT=COLUMN:PROPERTY@LABEL); the column is not "
        "sent; nothing is created (repeatable)",
    )
    mode.add_argument(
        "--state",
        metavar="DB",
        help="keep a sync state in this SQLite file (or a postgresql:// URL): records HubSpot "
        "holds as they are are not sent, and a stopped run is resumed by running it again",
    )
    mode.add_argument(
        "--full",
        action="store_true",
        help="with --state: send every record, and refresh the state",
    )
    mode.add_argument(
        "--mirror",
        action="store_true",
        help="with --state: once the whole file is read, archive at HubSpot the records this "
        "state wrote that the file no longer has (restorable for 90 days); with --dry-run, "
        "list them",
    )
    mode.add_argument(
        "--max-archive",
        type=float,
        default=0.1,
        metavar="SHARE",
        help="with --mirror: archive nothing if more than this share of the state's records "
        "would go (default 0.1)",
    )
    mode.add_argument(
        "--status",
        action="store_true",
        help="with --state: say what the last run did and where it stopped, and exit",
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


# -- columns -------------------------------------------------------------------------------


def _columns(values: list[str]) -> set[str]:
    return {c.strip() for v in values for c in v.split(",") if c.strip()}


def id_column(args: argparse.Namespace) -> str:
    """The column each record's id is read from."""
    if args.id_column:
        return str(args.id_column)
    return str(args.email_column if args.id_property == "email" else args.id_property)


def associate(args: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    """``--associate OBJECT=COLUMN:PROPERTY[@LABEL]``, each, as ``associate=`` takes them."""
    out: dict[str, tuple[str, ...]] = {}
    for given in args.associate:
        object_type, _, rest = given.partition("=")
        rest, at, label = rest.partition("@")
        column, _, property = rest.rpartition(":")
        if at and not label.strip():
            raise UsageError(f"--associate {given!r}: the label after '@' is empty")
        if not object_type.strip() or not column.strip() or not property.strip():
            raise UsageError(
                f"--associate takes OBJECT=COLUMN:PROPERTY (such as "
                f"companies=company_id:crm_id: the column holding each row's company key and "
                f"the unique company property, or hs_object_id, it matches), got {given!r}"
            )
        if object_type.strip() in out:
            raise UsageError(f"--associate names {object_type.strip()} twice")
        spec = (column.strip(), property.strip())
        out[object_type.strip()] = (*spec, label.strip()) if at else spec
    return out


def fill_empty(args: argparse.Namespace) -> bool | list[str]:
    """``--fill-empty``: False, True (every column) or the columns named."""
    if args.fill_empty is None:
        return False
    if args.fill_empty == "*":
        return True
    names = sorted(_columns([args.fill_empty]))
    if not names:
        raise UsageError("--fill-empty takes column names separated by commas, or none")
    return names


def header_check(args: argparse.Namespace) -> Callable[[list[str]], None]:
    """Refuses a CSV header without the columns the command line names."""
    key = id_column(args)
    named = _columns(args.only) | _columns(args.skip)
    named |= {item.partition("=")[0].strip() for item in args.rename}

    def check(header: list[str]) -> None:
        if key not in header and not (args.labels and _same_column(key, header)):
            what, option = (
                ("the email", "--email-column")
                if args.id_property == "email" and not args.id_column
                else (f"the {args.id_property} id", "--id-column")
            )
            hint = ""
            if not args.labels and _same_column(key, header):
                # HubSpot's own export names its columns by the properties' labels.
                hint = (
                    "; a HubSpot export names columns by their labels "
                    f"({next(h for h in header if h.strip().lower() == key.lower())!r}): "
                    "--labels reads it"
                )
            raise UsageError(
                f"the input has no column {key!r} for {what} "
                f"(columns: {', '.join(header)}); name it with {option}{hint}"
            )
        unknown = sorted(named - set(header) - {""})
        if unknown:
            raise UsageError(f"the input has no column {', '.join(map(repr, unknown))}")
        for object_type, (column, _) in getattr(args, "associations", {}).items():
            if column not in header:
                raise UsageError(
                    f"the input has no column {column!r} for --associate {object_type} "
                    f"(columns: {', '.join(header)})"
                )

    return check


def _same_column(key: str, header: list[str]) -> bool:
    """Whether the header names the id column in another case (an export's "Email")."""
    return any(h.strip().lower() == key.lower() for h in header)


def make_transform(args: argparse.Namespace) -> Callable[[Any], Any]:
    """Renames, --only, --skip and empty cells, applied to each raw record."""
    renames: dict[str, str] = {}
    for item in args.rename:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UsageError(f"--rename takes OLD=NEW, got {item!r}")
        renames[old.strip()] = new.strip()
    only, skip = _columns(args.only), _columns(args.skip)
    email = id_column(args)
    clears = args.missing == "clear"
    decimal = _decimal_reader(args.decimal)
    # The columns naming associated records are read as they are, whatever --only says.
    links = {column for column, _ in getattr(args, "associations", {}).values()}

    def transform(record: Any) -> Any:
        if not isinstance(record, dict):
            return record
        out: dict[str, Any] = {}
        for key, value in record.items():
            if key in ERROR_FIELDS:
                continue
            if args.labels and key != email and key.strip().lower() == email.lower():
                key = email
            if key in links:
                out[key] = value
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
            elif decimal is not None and key != email and isinstance(value, str):
                value = decimal(value)
            out[key] = value
        return out

    return transform


def _decimal_reader(mark: str | None) -> Callable[[str], str] | None:
    """``--decimal ,``: a cell written as a number with a decimal comma (``177289,33``,
    ``1.234,56``, ``-0,5``) is sent with a decimal point, its thousands points dropped; any
    other text is sent as it is."""
    if mark in (None, "."):
        return None
    if mark != ",":
        raise UsageError(f"--decimal takes ',' or '.', got {mark!r}")
    number = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?")

    def read(value: str) -> str:
        text = value.strip()
        if ("," in text or "." in text) and number.fullmatch(text):
            return text.replace(".", "").replace(",", ".")
        return value

    return read
