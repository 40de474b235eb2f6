"""Chats and their subscriptions.

A chat that blocked or removed the bot is deactivated with its subscriptions, never
deleted: the history stays, and pending deliveries to it are dropped.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.model import Chat, ChatKind, Filter, FilterKind, Subscription
from bot.store.db import Database


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A chat with its active subscriptions, for the operator's list."""

    chat: Chat
    filters: tuple[str, ...]
    active: bool


class ChatStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert(self, chat: Chat) -> int:
        """Remember a chat (and that it is reachable); returns its row id."""
        now = int(time.time())
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO chats (platform, chat_id, kind, title, active, created_at, updated_at)"
                " "
                "VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (platform, chat_id) DO UPDATE SET "
                "kind = excluded.kind, title = CASE WHEN excluded.title != '' THEN excluded.title "
                "ELSE chats.title END, active = 1, updated_at = excluded.updated_at",
                (chat.platform, chat.chat_id, chat.kind.value, chat.title, now, now),
            )
            async with conn.execute(
                "SELECT id FROM chats WHERE platform = ? AND chat_id = ?",
                (chat.platform, chat.chat_id),
            ) as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return int(row[0])

    async def get(self, platform: str, chat_id: str) -> tuple[Chat, bool] | None:
        row = await self.db.fetchone(
            "SELECT * FROM chats WHERE platform = ? AND chat_id = ?", (platform, chat_id)
        )
        if row is None:
            return None
        return _chat(row), bool(row["active"])

    async def subscribe(
        self, chat: Chat, flt: Filter, display: str, created_by: str
    ) -> tuple[Subscription, bool]:
        """(subscription, True if new or re-activated). `flt.value` is the matching key."""
        chat_ref = await self.upsert(chat)
        now = int(time.time())
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT id, active FROM subscriptions WHERE chat_ref = ? AND filter_kind = ? "
                "AND filter_key = ?",
                (chat_ref, flt.kind.value, flt.value),
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None and row["active"]:
                created = False
            elif row is not None:
                await conn.execute(
                    "UPDATE subscriptions SET active = 1, created_by = ?, created_at = ? "
                    "WHERE id = ?",
                    (created_by, now, row["id"]),
                )
                created = True
            else:
                await conn.execute(
                    "INSERT INTO subscriptions (chat_ref, filter_kind, filter_key, filter_name, "
                    "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (chat_ref, flt.kind.value, flt.value, display, created_by, now),
                )
                created = True
        subs = await self.for_chat(chat)
        sub = next(s for s in subs if s.filter.kind is flt.kind and _key(s) == flt.value)
        return sub, created

    async def unsubscribe(self, chat: Chat, flt: Filter | None) -> int:
        """Remove one subscription, or all of the chat's with `flt=None`; drops their
        pending deliveries. Returns how many were removed."""
        async with self.db.transaction() as conn:
            params: tuple[object, ...] = (chat.platform, chat.chat_id)
            where = "chat_ref = (SELECT id FROM chats WHERE platform = ? AND chat_id = ?)"
            if flt is not None:
                where += " AND filter_kind = ? AND filter_key = ?"
                params += (flt.kind.value, flt.value)
            # By chat first: the queued-deliveries index (migration 008), not a table scan.
            await conn.execute(
                "UPDATE deliveries SET state = 'dropped', last_error = 'unsubscribed' "
                "WHERE chat_ref = (SELECT id FROM chats WHERE platform = ? AND chat_id = ?) "
                "AND state IN ('pending', 'sending') AND state = 'pending' "
                f"AND subscription_id IN (SELECT id FROM subscriptions WHERE {where})",
                (chat.platform, chat.chat_id, *params),
            )
            cursor = await conn.execute(f"DELETE FROM subscriptions WHERE {where}", params)
            return cursor.rowcount

    async def for_chat(self, chat: Chat, *, active_only: bool = True) -> list[Subscription]:
        rows = await self.db.fetchall(
            "SELECT s.*, c.platform, c.chat_id, c.kind, c.title FROM subscriptions s "
            "JOIN chats c ON c.id = s.chat_ref WHERE c.platform = ? AND c.chat_id = ? "
            + ("AND s.active = 1 " if active_only else "")
            + "ORDER BY s.id",
            (chat.platform, chat.chat_id),
        )
        return [_subscription(r) for r in rows]

    async def deactivate(self, platform: str, chat_id: str, reason: str) -> int:
        """The bot can no longer write there: deactivate the chat, its subscriptions and
        drop its pending deliveries. Returns the number of subscriptions deactivated."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT id FROM chats WHERE platform = ? AND chat_id = ?", (platform, chat_id)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return 0
            chat_ref = row[0]
            await conn.execute(
                "UPDATE chats SET active = 0, updated_at = ? WHERE id = ?",
                (int(time.time()), chat_ref),
            )
            await conn.execute(
                "UPDATE deliveries SET state = 'dropped', last_error = ? "
                "WHERE chat_ref = ? AND state IN ('pending', 'sending')",
                (reason, chat_ref),
            )
            cursor = await conn.execute(
                "UPDATE subscriptions SET active = 0 WHERE chat_ref = ? AND active = 1", (chat_ref,)
            )
            return cursor.rowcount

    async def move(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        """A Telegram group became a supergroup: same chat, new id."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT id FROM chats WHERE platform = ? AND chat_id = ?", (platform, new_chat_id)
            ) as cursor:
                clash = await cursor.fetchone()
            if clash is not None:
                # Both ids known (the bot already saw the supergroup): keep the new row.
                async with conn.execute(
                    "SELECT id FROM chats WHERE platform = ? AND chat_id = ?",
                    (platform, old_chat_id),
                ) as cursor:
                    old = await cursor.fetchone()
                if old is None:
                    return
                await conn.execute(
                    "UPDATE OR IGNORE subscriptions SET chat_ref = ? WHERE chat_ref = ?",
                    (clash[0], old[0]),
                )
                # Queued ones follow the chat; its history stays with the old row.
                await conn.execute(
                    "UPDATE OR IGNORE deliveries SET chat_ref = ? "
                    "WHERE chat_ref = ? AND state IN ('pending', 'sending')",
                    (clash[0], old[0]),
                )
                await conn.execute("UPDATE chats SET active = 0 WHERE id = ?", (old[0],))
                return
            await conn.execute(
                "UPDATE chats SET chat_id = ?, kind = 'group', updated_at = ? "
                "WHERE platform = ? AND chat_id = ?",
                (new_chat_id, int(time.time()), platform, old_chat_id),
            )

    async def subscribers(self, platform: str | None = None) -> list[Subscriber]:
        rows = await self.db.fetchall(
            "SELECT c.*, group_concat(CASE WHEN s.filter_kind = 'all' THEN 'all' "
            "ELSE s.filter_kind || ':' || s.filter_name END, ' ') AS filters "
            "FROM chats c JOIN subscriptions s ON s.chat_ref = c.id AND s.active = 1 "
            + ("WHERE c.platform = ? " if platform else "")
            + "GROUP BY c.id ORDER BY c.platform, c.id",
            (platform,) if platform else (),
        )
        return [
            Subscriber(_chat(r), tuple((r["filters"] or "").split()), bool(r["active"]))
            for r in rows
        ]

    async def counts(self) -> dict[str, int]:
        row = await self.db.fetchone(
            "SELECT (SELECT count(*) FROM chats WHERE active = 1) AS chats, "
            "(SELECT count(*) FROM subscriptions WHERE active = 1) AS subscriptions, "
            "(SELECT count(DISTINCT chat_ref) FROM subscriptions WHERE active = 1) AS subscribed"
        )
        assert row is not None
        return {k: int(row[k]) for k in row.keys()}  # noqa: SIM118


def _key(sub: Subscription) -> str:
    return sub.filter.value


def _chat(r: sqlite3.Row) -> Chat:
    return Chat(r["platform"], r["chat_id"], ChatKind(r["kind"]), r["title"])


def _subscription(r: sqlite3.Row) -> Subscription:
    """Subscriptions carry the matching key in `filter.value`; the display name is kept
    in the row and shown by `display_name`."""
    kind = FilterKind(r["filter_kind"])
    return Subscription(
        id=r["id"],
        chat=Chat(r["platform"], r["chat_id"], ChatKind(r["kind"]), r["title"]),
        filter=Filter(kind, r["filter_key"]),
        created_by=r["created_by"],
        created_at=datetime.fromtimestamp(r["created_at"], UTC),
        active=bool(r["active"]),
        display=r["filter_name"],
    )
