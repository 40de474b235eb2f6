"""The admins' audit log and small durable settings (sync tokens, device ids)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.store.db import Database


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    detail: str


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, actor: str, action: str, detail: str = "") -> None:
        await self.db.execute(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
            (int(time.time()), actor, action, detail),
        )

    async def recent(self, limit: int = 20) -> list[AuditEntry]:
        rows = await self.db.fetchall(
            "SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [AuditEntry(datetime.fromtimestamp(r[0], UTC), r[1], r[2], r[3]) for r in rows]


class Settings:
    """Key-value pairs a platform keeps between runs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> str | None:
        value = await self.db.fetchval("SELECT value FROM settings WHERE key = ?", (key,))
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, value, int(time.time())),
        )
