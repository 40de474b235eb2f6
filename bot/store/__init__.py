"""The store: the only place with SQL. Open it once, use its table families."""

from __future__ import annotations

from pathlib import Path

from bot.store.audit import AuditEntry, AuditLog, Settings
from bot.store.chats import ChatStore, Subscriber
from bot.store.db import Database, SchemaError, latest_version
from bot.store.feeds import FeedStore
from bot.store.outbox import BroadcastStats, Outbox
from bot.store.statements import (
    IMPORT_BATCH,
    ImportOutcome,
    ImportResult,
    Named,
    SearchTooBroad,
    StatementStore,
    tag_key,
)

__all__ = [
    "IMPORT_BATCH",
    "AuditEntry",
    "BroadcastStats",
    "ImportOutcome",
    "ImportResult",
    "Named",
    "SchemaError",
    "SearchTooBroad",
    "Store",
    "Subscriber",
    "latest_version",
    "tag_key",
]


class Store:
    """One open database and its table families."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements = StatementStore(db)
        self.chats = ChatStore(db)
        self.outbox = Outbox(db)
        self.audit = AuditLog(db)
        self.settings = Settings(db)
        self.feeds = FeedStore(db)

    @classmethod
    async def open(cls, path: str | Path, *, target_version: int | None = None) -> Store:
        return cls(await Database.open(path, target_version=target_version))

    async def close(self) -> None:
        await self.db.close()

    @property
    def path(self) -> str:
        return self.db.path

    async def backup(self, dest: str | Path) -> None:
        await self.db.backup(dest)
