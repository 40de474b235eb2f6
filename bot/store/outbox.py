"""The outbox: announcements and deliveries, the durable queue the broadcaster drains.

A delivery is `pending` until the broadcaster claims it (`sending`) and records the
outcome (`sent`, `failed`, `dropped`, or back to `pending` with a later attempt time).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiosqlite

from bot.model import Chat, ChatKind, Delivery, DeliveryState, Filter, FilterKind
from bot.store.db import Database, placeholders

_MATCH = (
    "s.active = 1 AND c.active = 1 AND (s.filter_kind = 'all'"
    " OR (s.filter_kind = 'tag' AND s.filter_key IN ({tags}))"
    " OR (s.filter_kind = 'region' AND s.filter_key IN ({regions})))"
)


# The literal term of the `deliveries_due` partial index: SQLite uses a partial index only
# when the query repeats its WHERE term, and without it every claim scanned and sorted the
# whole deliveries table, sent history included (O(all deliveries ever) per batch).
_IN_OUTBOX = "d.state IN ('pending', 'sending')"


def _match_clause(tag_keys: Sequence[str], region_keys: Sequence[str]) -> str:
    return _MATCH.format(
        tags=placeholders(tag_keys) or "NULL", regions=placeholders(region_keys) or "NULL"
    )


async def enqueue_statement(
    conn: aiosqlite.Connection,
    statement_id: int,
    tag_keys: Sequence[str],
    region_keys: Sequence[str],
) -> int:
    """One pending delivery per chat with a matching active subscription (inside the
    caller's transaction). A chat subscribed to `all` and to a tag gets it once."""
    now = time.time()
    cursor = await conn.execute(
        "INSERT OR IGNORE INTO deliveries (chat_ref, platform, subscription_id, statement_id, "
        "state, next_attempt_at, created_at, updated_at) "
        "SELECT s.chat_ref, c.platform, min(s.id), ?, 'pending', ?, ?, ? "
        "FROM subscriptions s JOIN chats c ON c.id = s.chat_ref "
        f"WHERE {_match_clause(tag_keys, region_keys)} GROUP BY s.chat_ref ORDER BY s.chat_ref",
        (statement_id, now, now, now, *tag_keys, *region_keys),
    )
    return cursor.rowcount


@dataclass(frozen=True, slots=True)
class BroadcastStats:
    """Delivery counts for one statement or announcement, per platform."""

    kind: str  # statement | announcement
    item_id: int
    title: str
    created_at: datetime
    published_by: str | None
    counts: dict[str, dict[str, int]]  # platform → state → n
    first_sent_at: float | None
    last_sent_at: float | None

    def total(self, state: str) -> int:
        return sum(c.get(state, 0) for c in self.counts.values())

    @property
    def finished(self) -> bool:
        return self.total("pending") + self.total("sending") == 0


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def audience(self, tag_keys: Sequence[str], region_keys: Sequence[str]) -> int:
        """How many chats a statement with these tags and regions would reach."""
        return int(
            await self.db.fetchval(
                "SELECT count(DISTINCT s.chat_ref) FROM subscriptions s "
                f"JOIN chats c ON c.id = s.chat_ref WHERE {_match_clause(tag_keys, region_keys)}",
                (*tag_keys, *region_keys),
            )
        )

    async def audience_for_filter(self, flt: Filter) -> int:
        if flt.kind is FilterKind.ALL:
            return int(
                await self.db.fetchval(
                    "SELECT count(DISTINCT s.chat_ref) FROM subscriptions s "
                    "JOIN chats c ON c.id = s.chat_ref WHERE s.active = 1 AND c.active = 1"
                )
            )
        tags = [flt.value] if flt.kind is FilterKind.TAG else []
        regions = [flt.value] if flt.kind is FilterKind.REGION else []
        return await self.audience(tags, regions)

    async def announce(
        self, text: str, author: str, flt: Filter, display: str = ""
    ) -> tuple[int, int]:
        """Store an announcement and queue it for its audience; (announcement id, chats).

        `flt.value` is the matching key; `display` the name as the admin wrote it.
        With a tag or region filter only chats subscribed to that tag or region (or to
        everything) receive it; with `all` every chat with an active subscription does.
        """
        now = time.time()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO announcements (text, author, filter_kind, filter_key, filter_name, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (text, author, flt.kind.value, flt.value, display or flt.value, int(now)),
            )
            announcement_id = cursor.lastrowid
            if flt.kind is FilterKind.ALL:
                where, params = "s.active = 1 AND c.active = 1", ()
            else:
                tags = [flt.value] if flt.kind is FilterKind.TAG else []
                regions = [flt.value] if flt.kind is FilterKind.REGION else []
                where, params = _match_clause(tags, regions), (*tags, *regions)
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO deliveries (chat_ref, platform, subscription_id, "
                "announcement_id, state, next_attempt_at, created_at, updated_at) "
                "SELECT s.chat_ref, c.platform, min(s.id), ?, 'pending', ?, ?, ? "
                f"FROM subscriptions s JOIN chats c ON c.id = s.chat_ref WHERE {where} "
                "GROUP BY s.chat_ref ORDER BY s.chat_ref",
                (announcement_id, now, now, now, *params),
            )
            assert announcement_id is not None
            return announcement_id, cursor.rowcount

    async def announcement_text(self, announcement_id: int) -> str | None:
        value = await self.db.fetchval(
            "SELECT text FROM announcements WHERE id = ?", (announcement_id,)
        )
        return None if value is None else str(value)

    # ----------------------------------------------------------------------- the worker's side

    async def due(self, platform: str, limit: int, now: float | None = None) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest first."""
        now = time.time() if now is None else now
        rows = await self.db.fetchall(
            "SELECT d.*, c.chat_id AS c_chat_id, c.kind AS c_kind, c.title AS c_title "
            "FROM deliveries d JOIN chats c ON c.id = d.chat_ref "
            f"WHERE d.platform = ? AND {_IN_OUTBOX} AND d.state = 'pending' "
            "AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at, d.id LIMIT ?",
            (platform, now, limit),
        )
        return [_delivery(r) for r in rows]

    async def next_due_at(self, platform: str) -> float | None:
        value = await self.db.fetchval(
            "SELECT d.next_attempt_at FROM deliveries d "
            f"WHERE d.platform = ? AND {_IN_OUTBOX} AND d.state = 'pending' "
            "ORDER BY d.next_attempt_at LIMIT 1",
            (platform,),
        )
        return None if value is None else float(value)

    async def oldest_pending(
        self, platform: str, chat_ids: Sequence[str]
    ) -> dict[str, tuple[int, float]]:
        """chat id → (id, due time) of its oldest pending delivery, for these chats."""
        if not chat_ids:
            return {}
        rows = await self.db.fetchall(
            "SELECT c.chat_id, d.id, d.next_attempt_at FROM chats c "
            "JOIN deliveries d ON d.chat_ref = c.id "
            f"WHERE c.platform = ? AND c.chat_id IN ({placeholders(chat_ids)}) "
            f"AND {_IN_OUTBOX} AND d.state = 'pending' ORDER BY d.id DESC",
            (platform, *chat_ids),
        )
        return {r[0]: (r[1], r[2]) for r in rows}  # the last one written wins: the oldest

    async def mark_sending(self, ids: Sequence[int]) -> set[int]:
        """Claim these deliveries; returns the ids claimed. One that is no longer pending
        (dropped by an unsubscribe since it was read, or never committed: reads share the
        connection with other coroutines' open transactions) is not, and must not be sent."""
        if not ids:
            return set()
        now = time.time()
        async with (
            self.db.transaction() as conn,
            conn.execute(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
                f"updated_at = ? WHERE id IN ({placeholders(ids)}) AND state = 'pending' "
                "RETURNING id",
                (now, *ids),
            ) as cursor,
        ):
            return {row[0] for row in await cursor.fetchall()}

    async def mark_sent(self, results: Sequence[tuple[int, str]]) -> None:
        """Record sent deliveries with the platform's message ids, in one transaction."""
        if not results:
            return
        now = time.time()
        async with self.db.transaction() as conn:
            await conn.executemany(
                "UPDATE deliveries SET state = 'sent', message_id = ?, last_error = NULL, "
                "updated_at = ? WHERE id = ?",
                [(message_id, now, delivery_id) for delivery_id, message_id in results],
            )

    async def retry(self, delivery_id: int, at: float, error: str, *, count: bool = True) -> None:
        """Back to pending, due at `at`; `count=False` gives the attempt back (a 429)."""
        await self.db.execute(
            "UPDATE deliveries SET state = 'pending', next_attempt_at = ?, last_error = ?, "
            f"attempts = attempts - {0 if count else 1}, updated_at = ? WHERE id = ?",
            (at, error, time.time(), delivery_id),
        )

    async def release(self, ids: Sequence[int]) -> None:
        """Claimed but never sent (shutdown): back to pending, the attempt given back."""
        if not ids:
            return
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE deliveries SET state = 'pending', attempts = max(attempts - 1, 0) "
                f"WHERE id IN ({placeholders(ids)}) AND state = 'sending'",
                tuple(ids),
            )

    async def defer(self, due: dict[int, float]) -> None:
        """Push pending deliveries to a later time without counting an attempt."""
        async with self.db.transaction() as conn:
            await conn.executemany(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ? AND state = 'pending'",
                [(at, delivery_id) for delivery_id, at in due.items()],
            )

    async def fail(self, delivery_id: int, error: str, state: DeliveryState) -> None:
        await self.db.execute(
            "UPDATE deliveries SET state = ?, last_error = ?, updated_at = ? WHERE id = ?",
            (state.value, error, time.time(), delivery_id),
        )

    async def requeue_interrupted(self) -> int:
        """`sending` rows left by a crash go back to pending: they may or may not have
        reached the chat, and a repeat is better than a loss."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET state = 'pending', updated_at = ? WHERE state = 'sending'",
                (time.time(),),
            )
            return cursor.rowcount

    async def backlog(self) -> dict[str, int]:
        rows = await self.db.fetchall(
            "SELECT platform, count(*) FROM deliveries WHERE state IN ('pending', 'sending') "
            "GROUP BY platform"
        )
        return {r[0]: r[1] for r in rows}

    # ----------------------------------------------------------------------- reports

    async def recent_broadcasts(self, limit: int = 5) -> list[BroadcastStats]:
        """Delivery counts for the latest published statements and announcements."""
        items: list[tuple[str, sqlite3.Row]] = []
        for row in await self.db.fetchall(
            "SELECT id, title, created_at, published_by FROM statements "
            "WHERE id IN (SELECT DISTINCT statement_id FROM deliveries "
            "WHERE statement_id IS NOT NULL ORDER BY statement_id DESC LIMIT ?)",
            (limit,),
        ):
            items.append(("statement", row))
        for row in await self.db.fetchall(
            "SELECT id, substr(text, 1, 60) AS title, created_at, author AS published_by "
            "FROM announcements ORDER BY id DESC LIMIT ?",
            (limit,),
        ):
            items.append(("announcement", row))
        items.sort(key=lambda item: item[1]["created_at"], reverse=True)
        return [await self._stats(kind, row) for kind, row in items[:limit]]

    async def broadcast_stats(self, kind: str, item_id: int) -> BroadcastStats | None:
        if kind == "statement":
            row = await self.db.fetchone(
                "SELECT id, title, created_at, published_by FROM statements WHERE id = ?",
                (item_id,),
            )
        else:
            row = await self.db.fetchone(
                "SELECT id, substr(text, 1, 60) AS title, created_at, author AS published_by "
                "FROM announcements WHERE id = ?",
                (item_id,),
            )
        return None if row is None else await self._stats(kind, row)

    async def _stats(self, kind: str, row: sqlite3.Row) -> BroadcastStats:
        column = "statement_id" if kind == "statement" else "announcement_id"
        counts: dict[str, dict[str, int]] = {}
        for r in await self.db.fetchall(
            f"SELECT platform, state, count(*) FROM deliveries WHERE {column} = ? "
            "GROUP BY platform, state",
            (row["id"],),
        ):
            counts.setdefault(r[0], {})[r[1]] = r[2]
        times = await self.db.fetchone(
            f"SELECT min(updated_at), max(updated_at) FROM deliveries WHERE {column} = ? "
            "AND state = 'sent'",
            (row["id"],),
        )
        return BroadcastStats(
            kind=kind,
            item_id=row["id"],
            title=row["title"],
            created_at=datetime.fromtimestamp(row["created_at"], UTC),
            published_by=row["published_by"],
            counts=counts,
            first_sent_at=times[0] if times else None,
            last_sent_at=times[1] if times else None,
        )

    async def unreported_finished(self) -> list[BroadcastStats]:
        """Finished broadcasts whose publisher has not had a report yet.

        Asked every second while a broadcast runs: an index probe first says whether
        anything is still queued, so the full counts (a pass over every delivery of the
        item, 100,000 rows for a big audience) are computed once, when it is done.
        """
        out: list[BroadcastStats] = []
        for row in await self.db.fetchall(
            "SELECT id, title, created_at, published_by FROM statements WHERE reported = 0"
        ):
            if not await self._in_progress("statement", row["id"]):
                out.append(await self._stats("statement", row))
        for row in await self.db.fetchall(
            "SELECT id, substr(text, 1, 60) AS title, created_at, author AS published_by "
            "FROM announcements WHERE reported = 0"
        ):
            if not await self._in_progress("announcement", row["id"]):
                out.append(await self._stats("announcement", row))
        return out

    async def _in_progress(self, kind: str, item_id: int) -> bool:
        column = "statement_id" if kind == "statement" else "announcement_id"
        found = await self.db.fetchval(
            f"SELECT 1 FROM deliveries WHERE {column} = ? AND state IN ('pending', 'sending') "
            "LIMIT 1",
            (item_id,),
        )
        return found is not None

    async def mark_reported(self, kind: str, item_id: int) -> None:
        table = "statements" if kind == "statement" else "announcements"
        await self.db.execute(f"UPDATE {table} SET reported = 1 WHERE id = ?", (item_id,))


def _delivery(r: sqlite3.Row) -> Delivery:
    return Delivery(
        id=r["id"],
        chat=Chat(r["platform"], r["c_chat_id"], ChatKind(r["c_kind"]), r["c_title"]),
        subscription_id=r["subscription_id"],
        statement_id=r["statement_id"],
        announcement_id=r["announcement_id"],
        state=DeliveryState(r["state"]),
        attempts=r["attempts"],
        next_attempt_at=datetime.fromtimestamp(r["next_attempt_at"], UTC),
        message_id=r["message_id"],
        last_error=r["last_error"],
    )
