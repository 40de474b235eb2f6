"""Statements, tags, regions and full-text search.

Every write goes through `add_many`: one transaction per batch with explicit ids, so a
single statement from /publish and a million from the benchmark take the same path.
"""

from __future__ import annotations

import enum
import re
import sqlite3
import time
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import aiosqlite

from bot.model import Statement
from bot.regions import region_key
from bot.store import outbox
from bot.store.db import Database, placeholders


class ImportOutcome(enum.StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ImportResult:
    statement: Statement
    outcome: ImportOutcome
    deliveries: int = 0


@dataclass(frozen=True, slots=True)
class Named:
    """A tag or region as written, with its matching key and how often it is used."""

    key: str
    name: str
    count: int = 0


def tag_key(tag: str) -> str:
    return tag.lstrip("#").casefold()


def _epoch(moment: datetime | None) -> int:
    if moment is None:
        return int(time.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


# Statements per add_many call in a bulk import. A batch touches each page of the
# random-order indexes (slug, content hash, import key) once for all its rows: at a
# million statements 10,000 a batch imported ~1.5x faster than 2,000.
IMPORT_BATCH = 10_000
MAX_PREFIX_WORDS = 40  # an OR of more words costs FTS5 over 20 ms at a million statements
_WORD = re.compile(r"[^\W_]+")  # what FTS5's unicode61 tokenizer keeps as a token


# The indexed words that start with a prefix, ?1 to ?2, at most ?3 of them, walked one
# word at a time: each step seeks the vocabulary (migration 007) to the first word after
# the last one found. A plain range query would visit every (word, statement) pair.
PREFIX_WORDS_SQL = """
WITH RECURSIVE found (word) AS (
    SELECT (SELECT term FROM statements_vocab WHERE term >= ?1 AND term < ?2 LIMIT 1)
    UNION ALL
    SELECT (
        SELECT term FROM statements_vocab
        WHERE term >= found.word || char(1) AND term < ?2 LIMIT 1
    )
    FROM found WHERE found.word IS NOT NULL LIMIT ?3
)
SELECT word FROM found WHERE word IS NOT NULL
"""


class SearchTooBroad(ValueError):
    """A prefix (`a*`) matches more words than one search may look through."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"{prefix}* matches more than {MAX_PREFIX_WORDS} words")
        self.prefix = prefix


def query_tokens(words: str) -> list[tuple[str, bool]]:
    """User words → (word, is a prefix) pairs; quotes and operators are not words."""
    out = []
    for token in re.findall(r"[\w'’-]+\*?", words):
        prefix = token.endswith("*")
        token = token.rstrip("*")
        if token:
            out.append((token, prefix))
    return out


def single_tokens(token: str, prefix: bool) -> list[tuple[str, bool]]:
    """One user word → the index tokens it makes (`US-imp*` → us, imp*), folded.

    The index keeps no positions (migration 006), so a word the tokenizer splits is asked
    as its parts ANDed, never as a phrase; only the last part keeps the prefix star.
    """
    parts = _WORD.findall(fold_word(token))
    return [(part, prefix and i == len(parts) - 1) for i, part in enumerate(parts)]


def fold_word(word: str) -> str:
    """A word as the index holds it (lower case, diacritics removed: `Réunion` → reunion)."""
    word = word.lower()
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class StatementStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ----------------------------------------------------------------------- writes

    async def add(
        self,
        statement: Statement,
        *,
        import_key: str | None = None,
        deliver: bool = False,
        published_by: str | None = None,
    ) -> ImportResult:
        """Add or update one statement; with `deliver`, queue it for subscribers."""
        (result,) = await self.add_many(
            [(statement, import_key)], deliver=deliver, published_by=published_by
        )
        return result

    async def add_many(
        self,
        items: Sequence[tuple[Statement, str | None]],
        *,
        deliver: bool = False,
        published_by: str | None = None,
    ) -> list[ImportResult]:
        """Insert new statements, update changed ones, skip unchanged, in one transaction.

        A statement is identified by its import key (a file name, a feed guid) when it
        has one, otherwise by its content hash: the same content is the same statement.
        """
        now = int(time.time())
        async with self.db.transaction() as conn:
            keys = [k for _, k in items if k]
            hashes = [s.content_hash for s, k in items if not k]
            by_key: dict[str, sqlite3.Row] = {}
            by_hash: dict[str, sqlite3.Row] = {}
            if keys:
                for chunk in _chunks(keys):
                    rows = await _all(
                        conn,
                        "SELECT id, slug, import_key, content_hash FROM statements "
                        f"WHERE import_key IN ({placeholders(chunk)})",
                        chunk,
                    )
                    by_key.update({r["import_key"]: r for r in rows})
            if hashes:
                for chunk in _chunks(hashes):
                    rows = await _all(
                        conn,
                        "SELECT id, slug, content_hash FROM statements "
                        f"WHERE content_hash IN ({placeholders(chunk)})",
                        chunk,
                    )
                    by_hash.update({r["content_hash"]: r for r in rows})
            next_id = int((await _one(conn, "SELECT coalesce(max(id), 0) FROM statements"))[0]) + 1

            results: list[ImportResult] = []
            new_rows: list[tuple[object, ...]] = []
            updates: list[tuple[object, ...]] = []
            link_ids: list[int] = []
            linked: list[Statement] = []
            seen_in_batch: dict[str, int] = {}
            for statement, key in items:
                existing = by_key.get(key) if key else by_hash.get(statement.content_hash)
                ident = key or statement.content_hash
                if existing is None and ident in seen_in_batch:
                    existing_id = seen_in_batch[ident]
                    results.append(
                        ImportResult(replace(statement, id=existing_id), ImportOutcome.UNCHANGED)
                    )
                    continue
                if existing is not None:
                    stored = replace(statement, id=existing["id"], slug=existing["slug"])
                    if existing["content_hash"] == statement.content_hash:
                        results.append(ImportResult(stored, ImportOutcome.UNCHANGED))
                        continue
                    updates.append(
                        (
                            statement.title,
                            statement.body,
                            _epoch(statement.published_at),
                            statement.source,
                            statement.language,
                            statement.content_hash,
                            now,
                            existing["id"],
                        )
                    )
                    link_ids.append(existing["id"])
                    linked.append(stored)
                    results.append(ImportResult(stored, ImportOutcome.UPDATED))
                    continue
                new_id = next_id
                next_id += 1
                seen_in_batch[ident] = new_id
                stored = replace(statement, id=new_id)
                new_rows.append(
                    (
                        new_id,
                        statement.slug or f"statement-{new_id}",
                        key,
                        statement.title,
                        statement.body,
                        _epoch(statement.published_at),
                        statement.source,
                        statement.language,
                        statement.content_hash,
                        now,
                        now,
                        published_by,
                        0 if deliver else 1,
                    )
                )
                link_ids.append(new_id)
                linked.append(stored)
                results.append(ImportResult(stored, ImportOutcome.ADDED))

            if new_rows:
                slugs = await self._insert_with_unique_slugs(conn, new_rows)
                results = [
                    replace(r, statement=replace(r.statement, slug=slugs[r.statement.id]))
                    if r.outcome is ImportOutcome.ADDED
                    and r.statement.id in slugs
                    and r.statement.slug != slugs[r.statement.id]
                    else r
                    for r in results
                ]
            if new_rows:
                # The index, in one statement for the batch (see migration 004 for why).
                await conn.execute(
                    "INSERT INTO statements_fts (rowid, title, body) "
                    "SELECT id, title, body FROM statements WHERE id BETWEEN ? AND ?",
                    (new_rows[0][0], new_rows[-1][0]),
                )
            if updates:
                await conn.executemany(
                    "UPDATE statements SET title = ?, body = ?, published_at = ?, source = ?, "
                    "language = ?, content_hash = ?, updated_at = ? WHERE id = ?",
                    updates,
                )
                ids = [u[-1] for u in updates]
                await _uncount_links(conn, ids)
                for chunk in _chunks(ids):
                    marks = placeholders(chunk)
                    await conn.execute(
                        f"DELETE FROM statement_tags WHERE statement_id IN ({marks})", chunk
                    )
                    await conn.execute(
                        f"DELETE FROM statement_regions WHERE statement_id IN ({marks})", chunk
                    )
            if linked:
                await self._link(conn, linked)
            if deliver:
                final: list[ImportResult] = []
                for result in results:
                    if result.outcome is ImportOutcome.ADDED and result.statement.id is not None:
                        count = await outbox.enqueue_statement(
                            conn,
                            result.statement.id,
                            [tag_key(t) for t in result.statement.tags],
                            [region_key(r) for r in result.statement.regions],
                        )
                        result = replace(result, deliveries=count)
                    final.append(result)
                results = final
        return results

    async def _insert_with_unique_slugs(
        self, conn: aiosqlite.Connection, rows: list[tuple[object, ...]]
    ) -> dict[int, str]:
        """Insert new rows, suffixing slugs already taken; returns id → stored slug."""
        slugs = [str(r[1]) for r in rows]
        taken: set[str] = set()
        for chunk in _chunks(slugs):
            found = await _all(
                conn, f"SELECT slug FROM statements WHERE slug IN ({placeholders(chunk)})", chunk
            )
            taken.update(r["slug"] for r in found)
        fixed = []
        for row in rows:
            slug = str(row[1])
            if slug in taken:
                slug = await _free_slug(conn, f"{slug}-{row[0]}", taken)
            taken.add(slug)
            fixed.append((row[0], slug, *row[2:]))
        await conn.executemany(
            "INSERT INTO statements (id, slug, import_key, title, body, published_at, source, "
            "language, content_hash, created_at, updated_at, published_by, reported) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            fixed,
        )
        return {int(row[0]): str(row[1]) for row in fixed}  # type: ignore[call-overload]

    async def _link(self, conn: aiosqlite.Connection, statements: list[Statement]) -> None:
        tag_names: dict[str, str] = {}
        region_names: dict[str, str] = {}
        for st in statements:
            for tag in st.tags:
                tag_names.setdefault(tag_key(tag), tag.lstrip("#"))
            for region in st.regions:
                region_names.setdefault(region_key(region), region)
        tag_ids = await _ensure_named(conn, "tags", tag_names)
        region_ids = await _ensure_named(conn, "regions", region_names)
        tag_rows: list[tuple[int, int, int, int]] = []
        region_rows: list[tuple[int, int, int, int]] = []
        for st in statements:
            assert st.id is not None
            published = _epoch(st.published_at)
            seen: set[int] = set()
            for pos, tag in enumerate(st.tags):
                tid = tag_ids[tag_key(tag)]
                if tid not in seen:
                    seen.add(tid)
                    tag_rows.append((tid, published, st.id, pos))
            seen = set()
            for pos, region in enumerate(st.regions):
                rid = region_ids[region_key(region)]
                if rid not in seen:
                    seen.add(rid)
                    region_rows.append((rid, published, st.id, pos))
        if tag_rows:
            await conn.executemany(
                "INSERT INTO statement_tags (tag_id, published_at, statement_id, position) "
                "VALUES (?, ?, ?, ?)",
                tag_rows,
            )
            await _add_uses(conn, "tags", Counter(r[0] for r in tag_rows))
        if region_rows:
            await conn.executemany(
                "INSERT INTO statement_regions (region_id, published_at, statement_id, position) "
                "VALUES (?, ?, ?, ?)",
                region_rows,
            )
            await _add_uses(conn, "regions", Counter(r[0] for r in region_rows))

    async def delete(self, statement_id: int) -> bool:
        async with self.db.transaction() as conn:
            await _uncount_links(conn, [statement_id])
            cursor = await conn.execute("DELETE FROM statements WHERE id = ?", (statement_id,))
            return cursor.rowcount > 0

    # ----------------------------------------------------------------------- reads

    async def get(self, statement_id: int) -> Statement | None:
        rows = await self.db.fetchall("SELECT * FROM statements WHERE id = ?", (statement_id,))
        found = await self._hydrate(rows)
        return found[0] if found else None

    async def get_by_slug(self, slug: str) -> Statement | None:
        rows = await self.db.fetchall("SELECT * FROM statements WHERE slug = ?", (slug,))
        found = await self._hydrate(rows)
        return found[0] if found else None

    async def find_by_hash(self, content_hash: str) -> int | None:
        """The id of a stored statement with exactly this content."""
        value = await self.db.fetchval(
            "SELECT id FROM statements WHERE content_hash = ? LIMIT 1", (content_hash,)
        )
        return None if value is None else int(value)

    async def latest(self, limit: int, offset: int = 0) -> list[Statement]:
        rows = await self.db.fetchall(
            "SELECT * FROM statements ORDER BY published_at DESC, id DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return await self._hydrate(rows)

    async def by_tag(self, key: str, limit: int, offset: int = 0) -> list[Statement]:
        return await self._linked("tags", "statement_tags", "tag_id", key, limit, offset)

    async def by_region(self, key: str, limit: int, offset: int = 0) -> list[Statement]:
        return await self._linked("regions", "statement_regions", "region_id", key, limit, offset)

    async def _linked(
        self, table: str, links: str, column: str, key: str, limit: int, offset: int
    ) -> list[Statement]:
        """Newest statements linked to one tag or region: one range scan of the link
        table's (id, published_at, statement_id) primary key."""
        rows = await self.db.fetchall(
            f"SELECT s.* FROM {table} n JOIN {links} l ON l.{column} = n.id "
            "JOIN statements s ON s.id = l.statement_id WHERE n.key = ? "
            "ORDER BY l.published_at DESC, l.statement_id DESC LIMIT ? OFFSET ?",
            (key, limit, offset),
        )
        return await self._hydrate(rows)

    async def search(self, words: str, limit: int, offset: int = 0) -> list[Statement]:
        """Statements matching every word (title or body), newest first.

        `word*` matches the words that start so; SearchTooBroad when those are too many.
        """
        query = await self._match_expression(words)
        if not query:
            return []
        rows = await self.db.fetchall(
            "SELECT s.* FROM statements s WHERE s.id IN ("
            " SELECT rowid FROM statements_fts WHERE statements_fts MATCH ?"
            " ORDER BY rowid DESC LIMIT ? OFFSET ?) ORDER BY s.id DESC",
            (query, limit, offset),
        )
        return await self._hydrate(rows)

    async def _match_expression(self, words: str) -> str:
        """The FTS5 query for user words, prefixes spelled out as ORs of indexed words."""
        parts = []
        for word, is_prefix in query_tokens(words):
            for token, prefix in single_tokens(word, is_prefix):
                if not prefix:
                    parts.append(f'"{token}"')
                    continue
                rows = await self.db.fetchall(
                    PREFIX_WORDS_SQL, (token, token + "\U0010ffff", MAX_PREFIX_WORDS + 1)
                )
                if not rows:
                    return ""  # no indexed word starts so: nothing can match
                if len(rows) > MAX_PREFIX_WORDS:
                    raise SearchTooBroad(word)
                parts.append("(" + " OR ".join(f'"{r[0]}"' for r in rows) + ")")
        return " AND ".join(parts)

    async def count(self) -> int:
        return int(await self.db.fetchval("SELECT count(*) FROM statements"))

    async def tag(self, text: str) -> Named | None:
        """The tag as first written, if any statement has it now."""
        row = await self.db.fetchone(
            "SELECT key, name, uses FROM tags WHERE key = ? AND uses > 0", (tag_key(text),)
        )
        return Named(row["key"], row["name"], row["uses"]) if row else None

    async def region(self, text: str) -> Named | None:
        row = await self.db.fetchone(
            "SELECT key, name, uses FROM regions WHERE key = ? AND uses > 0", (region_key(text),)
        )
        return Named(row["key"], row["name"], row["uses"]) if row else None

    async def tags(self, limit: int = 1000) -> list[Named]:
        """Tags in use, most used first (counts kept by add_many and delete, see 006)."""
        rows = await self.db.fetchall(
            "SELECT key, name, uses FROM tags WHERE uses > 0 ORDER BY uses DESC, name LIMIT ?",
            (limit,),
        )
        return [Named(r["key"], r["name"], r["uses"]) for r in rows]

    async def regions(self, limit: int = 1000) -> list[Named]:
        rows = await self.db.fetchall(
            "SELECT key, name, uses FROM regions WHERE uses > 0 ORDER BY uses DESC, name LIMIT ?",
            (limit,),
        )
        return [Named(r["key"], r["name"], r["uses"]) for r in rows]

    async def tag_names(self) -> list[str]:
        return [r[0] for r in await self.db.fetchall("SELECT name FROM tags WHERE uses > 0")]

    async def region_names(self) -> list[str]:
        return [r[0] for r in await self.db.fetchall("SELECT name FROM regions WHERE uses > 0")]

    async def _hydrate(self, rows: list[sqlite3.Row]) -> list[Statement]:
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        marks = placeholders(ids)
        tags: dict[int, list[str]] = {i: [] for i in ids}
        regions: dict[int, list[str]] = {i: [] for i in ids}
        # One query for both: every round trip to the database thread adds to a page's latency.
        for r in await self.db.fetchall(
            "SELECT st.statement_id, 0, st.position, t.name FROM statement_tags st "
            f"JOIN tags t ON t.id = st.tag_id WHERE st.statement_id IN ({marks}) "
            "UNION ALL SELECT sr.statement_id, 1, sr.position, g.name FROM statement_regions sr "
            f"JOIN regions g ON g.id = sr.region_id WHERE sr.statement_id IN ({marks}) "
            "ORDER BY 1, 2, 3",
            [*ids, *ids],
        ):
            (regions if r[1] else tags)[r[0]].append(r[3])
        return [
            Statement(
                id=r["id"],
                slug=r["slug"],
                title=r["title"],
                paragraphs=tuple(r["body"].split("\n\n")) if r["body"] else (),
                regions=tuple(regions[r["id"]]),
                tags=tuple(tags[r["id"]]),
                published_at=datetime.fromtimestamp(r["published_at"], UTC),
                source=r["source"],
                language=r["language"],
                content_hash=r["content_hash"],
            )
            for r in rows
        ]


async def _ensure_named(
    conn: aiosqlite.Connection, table: str, names: dict[str, str]
) -> dict[str, int]:
    """Ids for tag or region keys, creating the missing ones with their first spelling."""
    if not names:
        return {}
    await conn.executemany(
        f"INSERT OR IGNORE INTO {table} (key, name) VALUES (?, ?)", list(names.items())
    )
    ids: dict[str, int] = {}
    keys = list(names)
    for chunk in _chunks(keys):
        for row in await _all(
            conn, f"SELECT key, id FROM {table} WHERE key IN ({placeholders(chunk)})", chunk
        ):
            ids[row[0]] = row[1]
    return ids


async def _add_uses(conn: aiosqlite.Connection, table: str, uses: Counter[int]) -> None:
    """Tag or region counts by id, one UPDATE per distinct id of the batch (migration 006)."""
    await conn.executemany(
        f"UPDATE {table} SET uses = uses + ? WHERE id = ?",
        [(n, ident) for ident, n in sorted(uses.items())],
    )


async def _uncount_links(conn: aiosqlite.Connection, statement_ids: list[int]) -> None:
    """Take these statements' links off the tag and region counts, before they go."""
    for table, links, column in (
        ("tags", "statement_tags", "tag_id"),
        ("regions", "statement_regions", "region_id"),
    ):
        uses: Counter[int] = Counter()
        for chunk in _chunks(statement_ids):
            rows = await _all(
                conn,
                f"SELECT {column}, count(*) FROM {links} "
                f"WHERE statement_id IN ({placeholders(chunk)}) GROUP BY {column}",
                chunk,
            )
            uses.update({r[0]: -r[1] for r in rows})
        if uses:
            await _add_uses(conn, table, uses)


async def _free_slug(conn: aiosqlite.Connection, base: str, taken: set[str]) -> str:
    """`base`, else `base-2`, `base-3`…: the first slug neither stored nor used in the batch
    (`title-12` may already belong to a statement titled "Title 12")."""
    candidate, n = base, 1
    while candidate in taken or await _all(
        conn, "SELECT 1 FROM statements WHERE slug = ?", (candidate,)
    ):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


async def _all(conn: aiosqlite.Connection, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def _one(conn: aiosqlite.Connection, sql: str, params: Sequence[object] = ()) -> sqlite3.Row:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
        assert row is not None
        return row


def _chunks(items: Sequence[str] | Sequence[int], size: int = 500) -> list[list]:  # type: ignore[type-arg]
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
