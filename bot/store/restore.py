"""Restore a backup into the configured database with SQLite's backup API.

Why the backup API and not a file copy: the target may have a `-wal` file from its last
run; copying a database file beside a stale WAL corrupts it, whereas writing through
SQLite replaces the content page by page and leaves a consistent database. Synchronous
on purpose: only the CLI calls it, with no event loop running, holding the database lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from bot.store.db import latest_version


class RestoreError(Exception):
    """SRC is not a backup this statement-bot can restore; the message says why."""


def _open_source(path: Path) -> sqlite3.Connection:
    """Read-write on purpose: a backup is in WAL mode (the backup API copies the header),
    and only a writable connection removes the `-wal`/`-shm` files it needs on close."""
    return sqlite3.connect(path)


def inspect_backup(src: str | Path) -> int:
    """The schema version of the statement-bot database at `src`, or RestoreError."""
    path = Path(src).expanduser()
    if not path.is_file():
        raise RestoreError(f"{path}: no such file")
    try:
        with contextlib.closing(_open_source(path)) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            has_statements = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'statements'"
            ).fetchone()
            check = str(conn.execute("PRAGMA quick_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise RestoreError(f"{path} is not an SQLite database ({exc})") from None
    if version < 1 or has_statements is None:
        raise RestoreError(f"{path} is not a statement-bot database (no schema version or table)")
    if version > latest_version():
        raise RestoreError(
            f"{path} is at schema version {version}, newer than this statement-bot knows "
            f"({latest_version()}); upgrade statement-bot first"
        )
    if check != "ok":
        raise RestoreError(f"{path} is damaged: {check}")
    return version


def restore(src: str | Path, database: str | Path) -> int:
    """Replace the content of `database` by `src` (checked first); returns its version.

    The caller must hold the database lock so that no bot writes meanwhile.
    """
    source_path = Path(src).expanduser()
    target_path = Path(database).expanduser()
    version = inspect_backup(source_path)
    if target_path.exists() and target_path.resolve() == source_path.resolve():
        raise RestoreError(f"{source_path} is the configured database itself")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(_open_source(source_path)) as source,
        contextlib.closing(sqlite3.connect(target_path)) as target,
    ):
        target.execute("PRAGMA busy_timeout = 5000")
        # Folds any WAL left by the last run into the file and drops it, and frees the
        # page size (a WAL database cannot change it): the backup then overwrites all.
        target.execute("PRAGMA journal_mode = DELETE")
        source.backup(target)
    return version
