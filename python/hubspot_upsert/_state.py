"""The sync state: what HubSpot last accepted for each record, and a journal of every run.

A state is kept in SQLite (a file; the default, nothing to set up) or in PostgreSQL (a
``postgresql://`` URL; for workers of one job that share it). Each record is stored under
(portal, object, id property, id) with a fingerprint of the properties HubSpot accepted and
the object's id. A bulk run asks the state, 100 records at a time, which records are
unchanged (not sent), journals each batch before it goes out, and stores the writes of each
answer in one transaction with the batch's "answered" mark. A run stopped at any point, a kill
included, leaves a state that names every record that landed: the next run sends the rest.
"""

from __future__ import annotations

import datetime
import importlib
import os
import socket
import sqlite3
from collections.abc import Sequence
from typing import Any

#: How many of the latest runs keep the journal of their batches once they have ended.
KEEP_JOURNALS = 50

#: What the meta table says a state is, and the layout version this package writes.
FORMAT = "hubspot-upsert sync state"
VERSION = "1"

_TABLES = (
    "hubspot_upsert_meta",
    "hubspot_upsert_records",
    "hubspot_upsert_runs",
    "hubspot_upsert_batches",
    "hubspot_upsert_links",
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS hubspot_upsert_meta (
        name TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hubspot_upsert_records (
        portal BIGINT NOT NULL, object TEXT NOT NULL, id_property TEXT NOT NULL,
        id TEXT NOT NULL, fingerprint TEXT NOT NULL, object_id BIGINT NOT NULL,
        run BIGINT NOT NULL,
        PRIMARY KEY (portal, object, id_property, id))""",
    """CREATE TABLE IF NOT EXISTS hubspot_upsert_runs (
        run {serial} PRIMARY KEY, portal BIGINT NOT NULL, object TEXT NOT NULL,
        id_property TEXT NOT NULL, full_run INTEGER NOT NULL, host TEXT NOT NULL,
        pid INTEGER NOT NULL, started TEXT NOT NULL, ended TEXT, outcome TEXT,
        total INTEGER, created INTEGER, updated INTEGER, unchanged INTEGER,
        skipped INTEGER, failed INTEGER)""",
    """CREATE TABLE IF NOT EXISTS hubspot_upsert_batches (
        run BIGINT NOT NULL, batch BIGINT NOT NULL, records INTEGER NOT NULL,
        sent TEXT NOT NULL, answered TEXT, landed INTEGER,
        PRIMARY KEY (run, batch))""",
    # The association each record has with a record of another type, as this state made it
    # (a layout 1 state gains the table when it is opened).
    """CREATE TABLE IF NOT EXISTS hubspot_upsert_links (
        portal BIGINT NOT NULL, object TEXT NOT NULL, id_property TEXT NOT NULL,
        id TEXT NOT NULL, to_object TEXT NOT NULL, to_id BIGINT NOT NULL,
        PRIMARY KEY (portal, object, id_property, id, to_object))""",
)


class SyncStateError(Exception):
    """The sync state cannot be used: not a state, another program's tables, damaged, or
    written by a newer version. Raised before anything is sent."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _is_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


class SyncState:
    """A sync state in a SQLite file (a path) or a PostgreSQL database (a ``postgresql://``
    URL; needs ``pip install hubspot-upsert[postgresql]``). Pass it (or the path or URL
    itself) as ``state=`` to :meth:`HubSpot.create_or_update_many`.

    Opening checks the store and creates its tables if it has none; a file that is not a
    state, another program's database or a damaged one raises :class:`SyncStateError`, and
    nothing is reset."""

    def __init__(self, target: str | os.PathLike[str]) -> None:
        self.target = os.fspath(target)
        if _is_url(self.target):
            self._db: _Database = _Postgres(self.target)
        else:
            self._db = _SQLite(self.target)
        try:
            self._db.prepare()
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SyncState({self._db.name!r})"

    def close(self) -> None:
        self._db.close()

    def __del__(self) -> None:
        # A state dropped without close() closes its connection (no ResourceWarning).
        db = getattr(self, "_db", None)
        if db is not None and db.conn is not None:
            db.close()

    def __enter__(self) -> SyncState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin(self, portal: int, object: str, id_property: str, *, full: bool = False) -> StateRun:
        """A run's view of the state: records of ``portal``'s ``object`` matched on
        ``id_property``. ``full``: every record is sent and its fingerprint refreshed."""
        run = self._db.insert_run(portal, object, id_property, full)
        return StateRun(self._db, run, portal, object, id_property, full)

    def looking(self, object: str, id_property: str, portal: int | None = None) -> StateRun:
        """A view that only tells unchanged records (a dry run: nothing is written). Without
        ``portal``, the portal of the latest run of this object and id property."""
        if portal is None:
            portal = self._db.latest_portal(object, id_property)
        return StateRun(self._db, None, portal, object, id_property, False)

    def status(self) -> str:
        """What the last run did and where it stopped, and what the state holds."""
        return self._db.status()


class StateRun:
    """One run's calls into the state (made by the native bulk loop, a batch at a time)."""

    def __init__(
        self,
        db: _Database,
        run: int | None,
        portal: int | None,
        object: str,
        id_property: str,
        full: bool,
    ) -> None:
        self._db = db
        self.run = run
        self.portal = portal
        self.scope = (portal, object, id_property)
        self.full = full
        #: A mirror run: the native loop tells :meth:`saw` every record's key.
        self.mirror = False
        self.seen: set[str] = set()
        self.unreadable = 0

    def recall(self, keys: Sequence[str]) -> list[tuple[str, int] | None]:
        if self.full or self.portal is None:
            return [None] * len(keys)
        held = self._db.recall(self.scope, keys)
        return [held.get(k) for k in keys]

    def saw(self, keys: Sequence[str], unreadable: int) -> None:
        """A mirror run read records with these keys (and ``unreadable`` with no id)."""
        self.seen.update(keys)
        self.unreadable += unreadable

    def held(self) -> list[tuple[str, int]]:
        """Every ``(key, object id)`` the state holds for this run's records."""
        if self.portal is None:
            return []
        return self._db.held(self.scope)

    def sent(self, batch: int, records: int) -> None:
        if self.run is not None:
            self._db.journal_sent(self.run, batch, records)

    def answered(self, batch: int | None, accepted: Sequence[tuple[str, str, int]]) -> None:
        if self.run is not None:
            self._db.journal_answered(self.run, self.scope, batch, accepted)

    def relink(self, to: str, links: Sequence[tuple[str, int | None]]) -> list[int | None]:
        """Stores the ``to`` record each key is associated with now (None: none) and returns
        what was stored before, for each (a dry run's view stores nothing)."""
        if self.run is None or not links:
            return [None] * len(links)
        return self._db.relink(self.scope, to, links)

    def forget(self, keys: Sequence[str], *, links: bool = False) -> None:
        """Forgets what was stored for these keys (their associations failed, or a mirror run
        archived them; ``links``: their associations too): the next run sends them again."""
        if self.run is not None and keys:
            self._db.forget(self.scope, keys, links=links)

    def end(self, result: Any, outcome: str) -> None:
        """Records how the run ended and its counts (``result``: a BulkResult, or None)."""
        if self.run is not None:
            self._db.end_run(self.run, result, outcome)


class _Database:
    """What SQLite and PostgreSQL share; each says how it connects and binds parameters."""

    name: str
    conn: Any
    serial = ""
    placeholder = "?"

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def execute(self, text: str, args: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.sql(text), args)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def transaction(self) -> Any:
        raise NotImplementedError

    def existing_tables(self) -> set[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Checks the store is a state (or empty) without changing it, then sets it up."""
        self.check()
        self.set_up()
        self.create()

    def set_up(self) -> None:
        pass

    def check(self) -> None:
        tables = self.existing_tables()
        ours = tables & set(_TABLES)
        if not ours and tables:
            shown = ", ".join(sorted(tables)[:5])
            raise SyncStateError(
                f"{self.name} is not a sync state: it holds other tables ({shown}); "
                "name a new file, or a database for the state"
            )
        if ours:
            if "hubspot_upsert_meta" not in ours:
                raise SyncStateError(f"{self.name} is not a complete sync state (no meta table)")
            meta = dict(self.execute("SELECT name, value FROM hubspot_upsert_meta").fetchall())
            if meta.get("format") != FORMAT:
                raise SyncStateError(
                    f"{self.name} is not a sync state (its meta table is another's)"
                )
            if meta.get("version") != VERSION:
                raise SyncStateError(
                    f"{self.name} is a sync state of layout {meta.get('version')!r}; this "
                    f"version of hubspot-upsert reads layout {VERSION!r} (upgrade it)"
                )

    def create(self) -> None:
        with self.transaction():
            for statement in _SCHEMA:
                self.execute(statement.format(serial=self.serial))
            self.execute(
                "INSERT INTO hubspot_upsert_meta (name, value) VALUES ('format', ?), "
                "('version', ?) ON CONFLICT (name) DO NOTHING",
                (FORMAT, VERSION),
            )
            self.execute(
                "CREATE INDEX IF NOT EXISTS hubspot_upsert_runs_scope ON hubspot_upsert_runs "
                "(object, id_property, run)"
            )

    def insert_run(self, portal: int, object: str, id_property: str, full: bool) -> int:
        with self.transaction() as cursor:
            cursor.execute(
                self.sql(
                    "INSERT INTO hubspot_upsert_runs (portal, object, id_property, full_run, "
                    "host, pid, started) VALUES (?, ?, ?, ?, ?, ?, ?)" + self.returning
                ),
                (portal, object, id_property, int(full), socket.gethostname(), os.getpid(), _now()),
            )
            run = self.new_id(cursor)
            # The journal of finished runs is kept for the latest ones only: the records'
            # fingerprints are the state, the batches only say how runs went.
            cursor.execute(
                self.sql(
                    "DELETE FROM hubspot_upsert_batches WHERE run IN (SELECT run FROM "
                    "hubspot_upsert_runs WHERE ended IS NOT NULL AND run <= ?)"
                ),
                (run - KEEP_JOURNALS,),
            )
            return run

    returning = ""

    def new_id(self, cursor: Any) -> int:
        raise NotImplementedError

    def latest_portal(self, object: str, id_property: str) -> int | None:
        row = self.execute(
            "SELECT portal FROM hubspot_upsert_runs WHERE object = ? AND id_property = ? "
            "ORDER BY run DESC LIMIT 1",
            (object, id_property),
        ).fetchone()
        return None if row is None else int(row[0])

    def recall(
        self, scope: tuple[int | None, str, str], keys: Sequence[str]
    ) -> dict[str, tuple[str, int]]:
        raise NotImplementedError

    def journal_sent(self, run: int, batch: int, records: int) -> None:
        with self.transaction():
            self.execute(
                "INSERT INTO hubspot_upsert_batches (run, batch, records, sent) "
                "VALUES (?, ?, ?, ?)",
                (run, batch, records, _now()),
            )

    def journal_answered(
        self,
        run: int,
        scope: tuple[int | None, str, str],
        batch: int | None,
        accepted: Sequence[tuple[str, str, int]],
    ) -> None:
        portal, object, id_property = scope
        # One order for every writer: concurrent runs never wait on each other in a cycle.
        rows = [(portal, object, id_property, k, f, o, run) for k, f, o in sorted(accepted)]
        with self.transaction() as cursor:
            if batch is not None:
                cursor.execute(
                    self.sql(
                        "UPDATE hubspot_upsert_batches SET answered = ?, landed = ? "
                        "WHERE run = ? AND batch = ?"
                    ),
                    (_now(), len(rows), run, batch),
                )
            if rows:
                cursor.executemany(
                    self.sql(
                        "INSERT INTO hubspot_upsert_records (portal, object, id_property, id, "
                        "fingerprint, object_id, run) VALUES (?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (portal, object, id_property, id) DO UPDATE SET "
                        "fingerprint = excluded.fingerprint, object_id = excluded.object_id, "
                        "run = excluded.run"
                    ),
                    rows,
                )

    def held(self, scope: tuple[int | None, str, str]) -> list[tuple[str, int]]:
        rows = self.execute(
            "SELECT id, object_id FROM hubspot_upsert_records WHERE portal = ? AND object = ? "
            "AND id_property = ? ORDER BY id",
            scope,
        ).fetchall()
        return [(str(k), int(o)) for k, o in rows]

    def relink(
        self,
        scope: tuple[int | None, str, str],
        to: str,
        links: Sequence[tuple[str, int | None]],
    ) -> list[int | None]:
        portal, object, id_property = scope
        keys = sorted({k for k, _ in links})
        with self.transaction() as cursor:
            before: dict[str, int] = {}
            for start in range(0, len(keys), 500):
                part = keys[start : start + 500]
                cursor.execute(
                    self.sql(
                        "SELECT id, to_id FROM hubspot_upsert_links WHERE portal = ? AND "
                        "object = ? AND id_property = ? AND to_object = ? AND id IN "
                        f"({','.join('?' * len(part))})"
                    ),
                    (portal, object, id_property, to, *part),
                )
                before.update((str(k), int(t)) for k, t in cursor.fetchall())
            now = dict(links)
            cursor.executemany(
                self.sql(
                    "DELETE FROM hubspot_upsert_links WHERE portal = ? AND object = ? AND "
                    "id_property = ? AND id = ? AND to_object = ?"
                ),
                [(portal, object, id_property, k, to) for k in keys if now[k] is None],
            )
            cursor.executemany(
                self.sql(
                    "INSERT INTO hubspot_upsert_links (portal, object, id_property, id, "
                    "to_object, to_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (portal, object, "
                    "id_property, id, to_object) DO UPDATE SET to_id = excluded.to_id"
                ),
                [(portal, object, id_property, k, to, now[k]) for k in keys if now[k] is not None],
            )
        return [before.get(k) for k, _ in links]

    def forget(
        self, scope: tuple[int | None, str, str], keys: Sequence[str], *, links: bool = False
    ) -> None:
        portal, object, id_property = scope
        rows = [(portal, object, id_property, k) for k in sorted(set(keys))]
        with self.transaction() as cursor:
            cursor.executemany(
                self.sql(
                    "DELETE FROM hubspot_upsert_records WHERE portal = ? AND object = ? "
                    "AND id_property = ? AND id = ?"
                ),
                rows,
            )
            if links:
                cursor.executemany(
                    self.sql(
                        "DELETE FROM hubspot_upsert_links WHERE portal = ? AND object = ? "
                        "AND id_property = ? AND id = ?"
                    ),
                    rows,
                )

    def end_run(self, run: int, result: Any, outcome: str) -> None:
        counts: tuple[Any, ...] = (None,) * 6
        if result is not None:
            counts = tuple(
                getattr(result, n)
                for n in ("total", "created", "updated", "unchanged", "skipped", "failed")
            )
        with self.transaction():
            self.execute(
                "UPDATE hubspot_upsert_runs SET ended = ?, outcome = ?, total = ?, created = ?, "
                "updated = ?, unchanged = ?, skipped = ?, failed = ? WHERE run = ?",
                (_now(), outcome[:500], *counts, run),
            )

    def status(self) -> str:
        last = self.execute(
            "SELECT run, portal, object, id_property, full_run, host, pid, started, ended, "
            "outcome, total, created, updated, unchanged, skipped, failed "
            "FROM hubspot_upsert_runs ORDER BY run DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return f"{self.name}: a sync state with no run yet"
        (run, portal, object, id_property, full, host, pid, started, ended, outcome,
         total, created, updated, unchanged, skipped, failed) = last  # fmt: skip
        sent, answered, out, landed = self.execute(
            "SELECT COUNT(*), COUNT(answered), COALESCE(SUM(CASE WHEN answered IS NULL "
            "THEN records END), 0), COALESCE(SUM(landed), 0) FROM hubspot_upsert_batches "
            "WHERE run = ?",
            (run,),
        ).fetchone()
        held = self.execute(
            "SELECT COUNT(*) FROM hubspot_upsert_records WHERE portal = ? AND object = ? "
            "AND id_property = ?",
            (portal, object, id_property),
        ).fetchone()[0]
        lines = [
            f"{self.name}: portal {portal}, {object} matched on {id_property}: "
            f"{held:,} records held",
            f"last run: #{run}{' (full)' if full else ''}, started {started} on {host} (pid {pid})",
        ]
        if ended is None:
            lines.append("  it did not finish (killed, or still running): no end was recorded")
        else:
            lines.append(f"  ended {ended}: {outcome}")
        if total is not None:
            lines.append(
                f"  {total:,} records: {created:,} created, {updated:,} updated, "
                f"{unchanged:,} unchanged, {skipped:,} skipped, {failed:,} failed"
            )
        lines.append(f"  {sent:,} batches sent, {answered:,} answered ({landed:,} records landed)")
        if sent > answered:
            lines.append(
                f"  {sent - answered:,} batches ({out:,} records) were sent and never "
                "answered: they may have landed; the next run sends them again"
            )
        return "\n".join(lines)


class _SQLite(_Database):
    serial = "INTEGER"

    def __init__(self, path: str) -> None:
        self.name = path
        if os.path.isdir(path):
            raise SyncStateError(f"{path} is a directory: name a file for the sync state")
        try:
            # Autocommit: transactions are begun explicitly. One connection may be used from
            # the thread a bulk run happens to run on (AsyncHubSpot runs it in a worker).
            self.conn = sqlite3.connect(
                path, timeout=60, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise SyncStateError(f"cannot open the sync state {path}: {e}") from None

    def prepare(self) -> None:
        try:
            check = self.conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                found = check[0] if check else "?"
                raise SyncStateError(f"the sync state {self.name} is damaged: {found}")
            super().prepare()
        except sqlite3.DatabaseError as e:
            raise SyncStateError(f"{self.name} is not a usable sync state: {e}") from None

    def set_up(self) -> None:
        self.conn.execute("PRAGMA journal_mode = WAL").fetchone()
        # With WAL, NORMAL survives a killed process (not a lost machine's last commits,
        # which are then sent again).
        self.conn.execute("PRAGMA synchronous = NORMAL")

    def existing_tables(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        return {r[0] for r in rows}

    def transaction(self) -> _SQLiteTransaction:
        return _SQLiteTransaction(self.conn)

    def new_id(self, cursor: Any) -> int:
        return int(cursor.lastrowid)

    def recall(
        self, scope: tuple[int | None, str, str], keys: Sequence[str]
    ) -> dict[str, tuple[str, int]]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        rows = self.conn.execute(
            "SELECT id, fingerprint, object_id FROM hubspot_upsert_records WHERE portal = ? "
            f"AND object = ? AND id_property = ? AND id IN ({marks})",
            (*scope, *keys),
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}


class _SQLiteTransaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an error): one writer at a time, without the
    deadlock of two readers upgrading at once."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Cursor:
        if self.conn.in_transaction:
            # A step a signal cut short left its transaction open: nothing of it was
            # committed, and it is abandoned.
            self.conn.execute("ROLLBACK")
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn.cursor()

    def __exit__(self, kind: object, *rest: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


class _Postgres(_Database):
    serial = "BIGSERIAL"
    placeholder = "%s"

    def __init__(self, url: str) -> None:
        try:
            psycopg: Any = importlib.import_module("psycopg")
        except ImportError:
            raise SyncStateError(
                "a PostgreSQL sync state needs psycopg: pip install 'hubspot-upsert[postgresql]'"
            ) from None
        self.psycopg = psycopg
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=30)
        except psycopg.Error as e:
            raise SyncStateError(f"cannot connect to the PostgreSQL sync state: {e}") from None
        info = self.conn.info
        # The URL may hold a password: the name shown is without it.
        self.name = f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"

    def prepare(self) -> None:
        # Two workers creating the tables at once: one waits for the other.
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('hubspot_upsert_state'))")
            super().prepare()

    def existing_tables(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() AND table_name LIKE 'hubspot\\_upsert\\_%'"
        ).fetchall()
        return {r[0] for r in rows}

    def transaction(self) -> Any:
        return _PostgresTransaction(self.conn)

    returning = " RETURNING run"

    def new_id(self, cursor: Any) -> int:
        return int(cursor.fetchone()[0])

    def recall(
        self, scope: tuple[int | None, str, str], keys: Sequence[str]
    ) -> dict[str, tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT id, fingerprint, object_id FROM hubspot_upsert_records WHERE portal = %s "
            "AND object = %s AND id_property = %s AND id = ANY(%s)",
            (*scope, list(keys)),
        ).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}


class _PostgresTransaction:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.tx: Any = None

    def __enter__(self) -> Any:
        self.tx = self.conn.transaction()
        self.tx.__enter__()
        return self.conn.cursor()

    def __exit__(self, *exc: Any) -> None:
        self.tx.__exit__(*exc)


def open_state(state: SyncState | str | os.PathLike[str]) -> tuple[SyncState, bool]:
    """The state to use, and whether the caller opened it (and closes it after the run)."""
    if isinstance(state, SyncState):
        return state, False
    if isinstance(state, (str, os.PathLike)):
        return SyncState(state), True
    raise TypeError(
        f"state must be a path, a postgresql:// URL or a SyncState, got {type(state).__name__}"
    )
