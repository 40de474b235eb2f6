"""The SQLite connection: pragmas, numbered migrations, and write transactions.

One aiosqlite connection per process, in autocommit mode; writes that must be atomic
go through `transaction()`, which holds a lock so two coroutines never interleave
inside one transaction on the shared connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

WAL_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the log file is cut back to once checkpointed
BULK_CACHE_KIB = 256 * 1024  # page cache of an importing process (use_bulk_cache)
CHECKPOINT_GAP = 0.5  # seconds between two checkpoints while writes keep coming
CHECKPOINT_IDLE = 5.0  # seconds between checkpoints nobody asked for

_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class SchemaError(Exception):
    """The database cannot be used by this version of the code."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every numbered migration, in order."""
    found: list[tuple[int, str, str]] = []
    folder = resources.files("bot.store") / "migrations"
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise SchemaError(f"migrations are not numbered 1..n without gaps: {versions}")
    return found


def latest_version() -> int:
    return len(migrations())


class Database:
    """An open database at the latest schema version."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._write_lock = asyncio.Lock()
        self._checkpointer = None if path == ":memory:" else Checkpointer(path)

    @classmethod
    async def open(cls, path: str | Path, *, target_version: int | None = None) -> Database:
        """Connect, set pragmas, and migrate up to `target_version` (default: latest)."""
        path = str(path)
        if path != ":memory:":
            Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA temp_store = MEMORY")
            # 64 MiB of pages (a ceiling, not an allocation): at a million statements the
            # index pages a batch touches stay in memory instead of being read back.
            await conn.execute("PRAGMA cache_size = -65536")
            # Commits never checkpoint: the Checkpointer does it beside them (see there).
            await conn.execute("PRAGMA wal_autocheckpoint = 0")
            await conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            db = cls(conn, path)
            await db.migrate(target_version)
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.stop()
        await self.conn.close()

    async def version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self, target_version: int | None = None) -> list[int]:
        """Apply the missing migrations, each with its version bump in one transaction."""
        steps = migrations()
        target = len(steps) if target_version is None else target_version
        current = await self.version()
        if current > len(steps):
            raise SchemaError(
                f"database {self.path!r} is at schema version {current}, newer than this "
                f"statement-bot knows ({len(steps)}); upgrade statement-bot or restore a backup"
            )
        applied: list[int] = []
        for version, name, sql in steps:
            if version <= current or version > target:
                continue
            async with self._write_lock:
                try:
                    await self.conn.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {version};\nCOMMIT;"
                    )
                except sqlite3.Error as exc:
                    if self.conn.in_transaction:
                        await self.conn.execute("ROLLBACK")
                    raise SchemaError(f"migration {name} failed: {exc}") from exc
            log.info("applied migration %s to %s", name, self.path)
            applied.append(version)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")
                self._wrote()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement in its own (implicit) transaction; returns lastrowid."""
        async with self._write_lock:
            cursor = await self.conn.execute(sql, params)
            rowid = cursor.lastrowid or 0
            await cursor.close()
        self._wrote()
        return rowid

    async def use_bulk_cache(self) -> None:
        """A larger page cache for the rest of this connection, for a bulk import.

        Past a few hundred thousand statements the random-order indexes (slug, content
        hash, import key) outgrow the default 64 MiB, and every batch reads their pages
        back: at a million, 256 MiB took the import from ~4,750 to ~5,240 statements/s.
        """
        await self.conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")

    def _wrote(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.poke()

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        async with self.conn.execute(sql, params) as cursor:
            row: sqlite3.Row | None = await cursor.fetchone()
            return row

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    async def ping(self) -> None:
        """A round trip to the database (health checks): raises if it cannot answer."""
        await self.fetchval("SELECT 1")

    async def backup(self, dest: str | Path) -> None:
        """SQLite's online backup: consistent even while the bot writes."""
        dest_path = Path(dest)
        dest_path.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(dest_path) as target:
            await self.conn.backup(target, pages=1024, sleep=0.0)


class Checkpointer:
    """Copies the write-ahead log back into the database file on a connection and thread
    of its own.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 pages, and
    its two fsyncs took a fifth of a bulk import's time. A PASSIVE checkpoint here never
    blocks the writer or readers; it runs after writes (at most every CHECKPOINT_GAP) and
    on a slow timer for writes it was not told about. A crash loses nothing: committed
    pages are in the log until copied, and SQLite replays it on the next open.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One thread owns the checkpoint connection: a job cancelled on the loop's side
        # still finishes before the close queued behind it.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-checkpoint")
        self._conn: sqlite3.Connection | None = None
        self._stopping = False

    def poke(self) -> None:
        """Something was committed: checkpoint soon."""
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="sqlite-checkpointer"
            )

    async def stop(self) -> None:
        self._stopping = True  # as well as cancel: 3.11's wait_for can swallow a cancel
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await asyncio.wrap_future(self._thread.submit(self._close))
        self._thread.shutdown(wait=False)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECKPOINT_IDLE):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await loop.run_in_executor(self._thread, self._checkpoint)
            except sqlite3.Error as exc:
                log.warning("checkpoint of %s failed: %s", self.path, exc)
            await asyncio.sleep(CHECKPOINT_GAP)

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None)
            self._conn.execute("PRAGMA busy_timeout = 5000")
        (page_size,) = self._conn.execute("PRAGMA page_size").fetchone()
        _, logged, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if logged * page_size > WAL_SIZE_LIMIT:
            # Under steady writes the log never empties by itself (the newest batch is
            # not yet copied when the next begins): copy the rest with the writer held
            # off for a moment, and start the log over.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def placeholders(items: Iterable[object]) -> str:
    return ",".join("?" for _ in items)
