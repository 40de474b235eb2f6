"""Feeds the bot polls, the entries it has seen in them, and the held statements.

Why a table of seen entries and not just statement import keys: an entry is "the same"
by its guid, else its link, else its text (a site that regenerates guids must not flood
subscribers), and entries that were only noted (a feed added without its history) have
no statement at all. The poller asks `lookup` which of a fetch's entries it knows, and
writes one fetch's findings with `record_fetch` in one transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.store import outbox
from bot.store.db import Database, placeholders


class FeedExists(Exception):
    """A feed with this URL is already polled; `feed_id` says which."""

    def __init__(self, feed_id: int) -> None:
        super().__init__(f"feed #{feed_id} has this URL")
        self.feed_id = feed_id


@dataclass(frozen=True, slots=True)
class Feed:
    id: int
    url: str
    title: str
    tag: str
    region: str
    hold: bool
    import_history: bool
    interval: float | None  # seconds; None: the configured default
    added_by: str
    created_at: datetime
    etag: str | None
    last_modified: str | None
    primed: bool
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    next_fetch_at: datetime
    errors: int
    last_error: str | None
    entries: int = 0  # statements from this feed
    held: int = 0


@dataclass(frozen=True, slots=True)
class SeenEntry:
    """A stored entry identity, as `lookup` returns it."""

    id: int
    guid: str | None
    link: str | None
    text_hash: str
    content_hash: str
    import_key: str
    statement_id: int | None
    held: bool
    first_seen_at: int


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """An entry identity to insert (`row_id` None) or to refresh (`row_id` set)."""

    guid: str | None
    link: str | None
    text_hash: str
    content_hash: str
    import_key: str
    statement_id: int | None
    held: bool = False
    rejected: str | None = None
    row_id: int | None = None


@dataclass(frozen=True, slots=True)
class HeldEntry:
    statement_id: int
    title: str
    feed_id: int
    feed_url: str
    first_seen_at: datetime
    source: str | None


def _when(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


_FEED_COLUMNS = (
    "f.*, "
    "(SELECT count(DISTINCT e.statement_id) FROM feed_entries e WHERE e.feed_id = f.id) "
    "AS n_entries, "
    "(SELECT count(*) FROM feed_entries e WHERE e.feed_id = f.id AND e.held = 1) AS n_held"
)


def _feed(r: sqlite3.Row) -> Feed:
    keys = r.keys()
    return Feed(
        id=r["id"],
        url=r["url"],
        title=r["title"],
        tag=r["default_tag"],
        region=r["default_region"],
        hold=bool(r["hold"]),
        import_history=bool(r["import_history"]),
        interval=r["interval"],
        added_by=r["added_by"],
        created_at=datetime.fromtimestamp(r["created_at"], UTC),
        etag=r["etag"],
        last_modified=r["last_modified"],
        primed=bool(r["primed"]),
        last_fetch_at=_when(r["last_fetch_at"]),
        last_success_at=_when(r["last_success_at"]),
        next_fetch_at=datetime.fromtimestamp(r["next_fetch_at"], UTC),
        errors=r["errors"],
        last_error=r["last_error"],
        entries=r["n_entries"] if "n_entries" in keys else 0,
        held=r["n_held"] if "n_held" in keys else 0,
    )


def _seen(r: sqlite3.Row) -> SeenEntry:
    return SeenEntry(
        id=r["id"],
        guid=r["guid"],
        link=r["link"],
        text_hash=r["text_hash"],
        content_hash=r["content_hash"],
        import_key=r["import_key"],
        statement_id=r["statement_id"],
        held=bool(r["held"]),
        first_seen_at=r["first_seen_at"],
    )


class FeedStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ----------------------------------------------------------------------- the list

    async def add(
        self,
        url: str,
        *,
        added_by: str,
        tag: str = "",
        region: str = "",
        hold: bool = False,
        import_history: bool = True,
        interval: float | None = None,
        title: str = "",
    ) -> Feed:
        """A new feed, due at once. Raises FeedExists for a URL already polled."""
        now = time.time()
        async with self.db.transaction() as conn:
            async with conn.execute("SELECT id FROM feeds WHERE url = ?", (url,)) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                raise FeedExists(int(row[0]))
            cursor = await conn.execute(
                "INSERT INTO feeds (url, title, default_tag, default_region, hold, "
                "import_history, interval, added_by, created_at, next_fetch_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (url, title, tag, region, int(hold), int(import_history), interval, added_by,
                 int(now), now),
            )  # fmt: skip
            feed_id = cursor.lastrowid
        assert feed_id is not None
        feed = await self.get(feed_id)
        assert feed is not None
        return feed

    async def get(self, feed_id: int) -> Feed | None:
        row = await self.db.fetchone(
            f"SELECT {_FEED_COLUMNS} FROM feeds f WHERE f.id = ?", (feed_id,)
        )
        return None if row is None else _feed(row)

    async def all(self) -> list[Feed]:
        rows = await self.db.fetchall(f"SELECT {_FEED_COLUMNS} FROM feeds f ORDER BY f.id")
        return [_feed(r) for r in rows]

    async def delete(self, feed_id: int) -> bool:
        """Stop polling a feed; its statements stay in the archive."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM feeds WHERE id = ?", (feed_id,))
            return cursor.rowcount > 0

    async def due(self, now: float | None = None) -> list[Feed]:
        now = time.time() if now is None else now
        rows = await self.db.fetchall(
            "SELECT f.* FROM feeds f WHERE f.next_fetch_at <= ? ORDER BY f.next_fetch_at",
            (now,),
        )
        return [_feed(r) for r in rows]

    async def next_due_at(self) -> float | None:
        value = await self.db.fetchval("SELECT min(next_fetch_at) FROM feeds")
        return None if value is None else float(value)

    async def poll_soon(self, feed_id: int) -> None:
        """Due now (an admin asked for it)."""
        await self.db.execute(
            "UPDATE feeds SET next_fetch_at = ? WHERE id = ?", (time.time(), feed_id)
        )

    # ----------------------------------------------------------------------- one fetch

    async def lookup(
        self,
        feed_id: int,
        guids: Iterable[str],
        links: Iterable[str],
        text_hashes: Iterable[str],
    ) -> list[SeenEntry]:
        """Stored identities of this feed matching any of the guids, links or texts."""
        found: dict[int, SeenEntry] = {}
        for column, values in (("guid", guids), ("link", links), ("text_hash", text_hashes)):
            items = sorted(set(values))
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                rows = await self.db.fetchall(
                    f"SELECT * FROM feed_entries WHERE feed_id = ? "
                    f"AND {column} IN ({placeholders(chunk)}) ORDER BY id",
                    (feed_id, *chunk),
                )
                for r in rows:
                    found.setdefault(r["id"], _seen(r))
        return sorted(found.values(), key=lambda s: s.id)

    async def record_fetch(
        self,
        feed_id: int,
        *,
        next_fetch_at: float,
        etag: str | None = None,
        last_modified: str | None = None,
        title: str | None = None,
        entries: Sequence[EntryRecord] = (),
        primed: bool | None = None,
        now: float | None = None,
    ) -> None:
        """A successful fetch (200 or 304): validators, schedule, entries; one transaction."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE feeds SET etag = ?, last_modified = ?, title = coalesce(?, title), "
                "primed = coalesce(?, primed), last_fetch_at = ?, last_success_at = ?, "
                "next_fetch_at = ?, errors = 0, last_error = NULL WHERE id = ?",
                (etag, last_modified, title, None if primed is None else int(primed), now, now,
                 next_fetch_at, feed_id),
            )  # fmt: skip
            if cursor.rowcount == 0:
                return  # deleted while it was being fetched
            inserts = [e for e in entries if e.row_id is None]
            updates = [e for e in entries if e.row_id is not None]
            if inserts:
                await conn.executemany(
                    "INSERT INTO feed_entries (feed_id, guid, link, text_hash, content_hash, "
                    "import_key, statement_id, held, rejected, first_seen_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (feed_id, e.guid, e.link, e.text_hash, e.content_hash, e.import_key,
                         e.statement_id, int(e.held), e.rejected, int(now), int(now))
                        for e in inserts
                    ],
                )  # fmt: skip
            if updates:
                await conn.executemany(
                    "UPDATE feed_entries SET guid = coalesce(?, guid), link = coalesce(?, link), "
                    "text_hash = ?, content_hash = ?, rejected = ?, updated_at = ?, "
                    "statement_id = coalesce(?, statement_id), "
                    "import_key = CASE WHEN import_key = '' THEN ? ELSE import_key END, "
                    "held = max(held, ?) WHERE id = ?",
                    [
                        (e.guid, e.link, e.text_hash, e.content_hash, e.rejected, int(now),
                         e.statement_id, e.import_key, int(e.held), e.row_id)
                        for e in updates
                    ],
                )  # fmt: skip

    async def record_error(
        self, feed_id: int, error: str, *, next_fetch_at: float, now: float | None = None
    ) -> int:
        """A failed fetch; returns the number of failures in a row."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE feeds SET errors = errors + 1, last_error = ?, last_fetch_at = ?, "
                "next_fetch_at = ? WHERE id = ?",
                (error, now, next_fetch_at, feed_id),
            )
            async with conn.execute("SELECT errors FROM feeds WHERE id = ?", (feed_id,)) as cur:
                row = await cur.fetchone()
        return 0 if row is None else int(row[0])

    # ----------------------------------------------------------------------- held entries

    async def held(self) -> list[HeldEntry]:
        rows = await self.db.fetchall(
            "SELECT e.statement_id, s.title, s.source, e.feed_id, f.url, "
            "min(e.first_seen_at) AS seen FROM feed_entries e "
            "JOIN statements s ON s.id = e.statement_id JOIN feeds f ON f.id = e.feed_id "
            "WHERE e.held = 1 GROUP BY e.statement_id ORDER BY e.statement_id"
        )
        return [
            HeldEntry(
                statement_id=r["statement_id"],
                title=r["title"],
                feed_id=r["feed_id"],
                feed_url=r["url"],
                first_seen_at=datetime.fromtimestamp(r["seen"], UTC),
                source=r["source"],
            )
            for r in rows
        ]

    async def release(self, statement_id: int, by: str) -> int | None:
        """Queue a held statement for its subscribers; the number of deliveries, or None
        when it is not held. `by` is told when the broadcast is done."""
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT 1 FROM feed_entries WHERE statement_id = ? AND held = 1 LIMIT 1",
                (statement_id,),
            ) as cursor:
                if await cursor.fetchone() is None:
                    return None
            async with conn.execute(
                "SELECT t.key FROM statement_tags st JOIN tags t ON t.id = st.tag_id "
                "WHERE st.statement_id = ?",
                (statement_id,),
            ) as cursor:
                tag_keys = [r[0] for r in await cursor.fetchall()]
            async with conn.execute(
                "SELECT g.key FROM statement_regions sr JOIN regions g ON g.id = sr.region_id "
                "WHERE sr.statement_id = ?",
                (statement_id,),
            ) as cursor:
                region_keys = [r[0] for r in await cursor.fetchall()]
            count = await outbox.enqueue_statement(conn, statement_id, tag_keys, region_keys)
            await conn.execute(
                "UPDATE feed_entries SET held = 0, updated_at = ? WHERE statement_id = ?",
                (int(time.time()), statement_id),
            )
            await conn.execute(
                "UPDATE statements SET published_by = ?, reported = 0 WHERE id = ?",
                (by, statement_id),
            )
        return count

    async def drop(self, statement_id: int) -> bool:
        """Never send a held statement; it stays in the archive."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE feed_entries SET held = 0, updated_at = ? "
                "WHERE statement_id = ? AND held = 1",
                (int(time.time()), statement_id),
            )
            return cursor.rowcount > 0

    # ----------------------------------------------------------------------- other sources

    async def import_key_of(self, statement_id: int) -> str | None:
        """The key a statement was imported under (the inbox asks: was it this file?)."""
        value = await self.db.fetchval(
            "SELECT import_key FROM statements WHERE id = ?", (statement_id,)
        )
        return None if value is None else str(value)

    # ----------------------------------------------------------------------- for the Atom feed

    async def statement_times(self, ids: Sequence[int]) -> dict[int, tuple[datetime, datetime]]:
        """id → (created_at, updated_at): an Atom entry's `updated` is the last edit."""
        out: dict[int, tuple[datetime, datetime]] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            rows = await self.db.fetchall(
                "SELECT id, created_at, updated_at FROM statements "
                f"WHERE id IN ({placeholders(chunk)})",
                chunk,
            )
            for r in rows:
                out[r[0]] = (
                    datetime.fromtimestamp(r[1], UTC),
                    datetime.fromtimestamp(r[2], UTC),
                )
        return out
