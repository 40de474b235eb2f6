"""Who serves a database: an exclusive `flock` on `<database>.lock`.

Why a lock file and not SQLite's own locking: SQLite happily lets two bots share a
database (each would broadcast every statement), and lets `restore` swap the file under
a running bot. The service holds this lock for its whole life; `restore` takes it too.
Short CLI commands (import, publish, backup, stats) do not: they are safe beside a bot.
The kernel drops the lock when the process dies, so a crash never leaves it stale.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not Unix: no locking
    fcntl = None  # type: ignore[assignment]


class DatabaseInUse(Exception):
    """Another process (a running statement-bot, or a restore) holds the database lock."""

    def __init__(self, database: str, holder: str) -> None:
        self.database = database
        self.holder = holder
        who = f"process {holder}" if holder else "another process"
        super().__init__(
            f"another statement-bot ({who}) is using the database {database}; "
            "stop it first (systemctl stop statement-bot, or docker compose stop bot)"
        )


def lock_path(database: str | Path) -> Path:
    return Path(f"{Path(database).expanduser()}.lock")


class DatabaseLock:
    """The held lock; `release()` (or process exit) lets go of it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database: str | Path) -> DatabaseLock | None:
        """Take the lock without waiting; DatabaseInUse if it is held. None for `:memory:`."""
        if str(database) == ":memory:" or fcntl is None:
            return None
        path = lock_path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise DatabaseInUse(str(database), holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the last descriptor drops the flock
