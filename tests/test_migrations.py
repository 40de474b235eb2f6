"""Schema migrations: a fresh database in one step, every older version upgraded with its
data intact, a failed step rolled back, and a database newer than the code refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.statements import parse_statement
from bot.store import SchemaError, Store, latest_version
from bot.store import db as db_module
from bot.store.db import Database, migrations

LATEST = latest_version()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        return {r[0] for r in rows}


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_migrations_are_numbered_without_gaps() -> None:
    steps = migrations()
    assert [v for v, _, _ in steps] == list(range(1, LATEST + 1))
    assert LATEST >= 4
    assert all(name.endswith(".sql") and sql.strip() for _, name, sql in steps)


async def test_fresh_database_is_at_latest(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "new.db")
    try:
        assert await store.db.version() == LATEST
    finally:
        await store.close()
    names = tables(tmp_path / "new.db")
    wanted = {"statements", "tags", "regions", "statement_tags", "statement_regions"}
    wanted |= {"statements_fts", "chats", "subscriptions", "announcements", "deliveries"}
    wanted |= {"audit_log", "settings"}
    assert wanted <= names
    assert "statements_fts_insert" not in names  # dropped by 004: the store indexes batches


async def seed(db: Database, version: int) -> None:
    """Rows a database at `version` could hold, written with that version's columns."""
    if version >= 1:
        await db.execute(
            "INSERT INTO statements (id, slug, import_key, title, body, published_at, "
            "content_hash, created_at, updated_at) VALUES (1, 'old-news', 'file:old.txt', "
            "'Old news', 'Drones over the gulf.\n\nSecond paragraph.', 1700000000, 'h1', 0, 0)"
        )
        await db.execute("INSERT INTO tags (id, key, name) VALUES (1, 'iran', 'Iran')")
        await db.execute(
            "INSERT INTO statement_tags (tag_id, published_at, statement_id, position) "
            "VALUES (1, 1700000000, 1, 0)"
        )
        if version >= 6:  # from 006 on the store keeps the counts itself
            await db.execute("UPDATE tags SET uses = 1 WHERE id = 1")
        if version >= 4:  # from 004 on the store indexes new rows itself
            await db.execute(
                "INSERT INTO statements_fts (rowid, title, body) SELECT id, title, body "
                "FROM statements"
            )
        # 001-003: their insert trigger has indexed the row.
        hits = await db.fetchval(
            "SELECT count(*) FROM statements_fts WHERE statements_fts MATCH 'gulf'"
        )
        assert hits == 1
    if version >= 2:
        await db.execute(
            "INSERT INTO chats (id, platform, chat_id, kind, title, created_at, updated_at) "
            "VALUES (1, 'telegram', '42', 'private', 'Ann', 0, 0)"
        )
        await db.execute(
            "INSERT INTO subscriptions (chat_ref, filter_kind, filter_key, filter_name, "
            "created_by, created_at) VALUES (1, 'tag', 'iran', 'Iran', 'telegram:42', 0)"
        )
    if version >= 3:
        await db.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES ('matrix.next_batch', 's9', 0)"
        )


@pytest.mark.parametrize("start", range(LATEST))
async def test_upgrade_from_each_earlier_version(tmp_path: Path, start: int) -> None:
    path = tmp_path / "old.db"
    old = await Database.open(path, target_version=start)
    try:
        assert await old.version() == start
        await seed(old, start)
    finally:
        await old.close()
    assert user_version(path) == start

    store = await Store.open(path)
    try:
        assert await store.db.version() == LATEST
        if start >= 1:
            got = await store.statements.get(1)
            assert got is not None
            assert (got.title, got.tags, got.slug) == ("Old news", ("Iran",), "old-news")
            assert got.paragraphs == ("Drones over the gulf.", "Second paragraph.")
            assert [s.id for s in await store.statements.search("gulf", 5)] == [1]
            assert [(t.name, t.count) for t in await store.statements.tags()] == [("Iran", 1)]
            assert [s.id for s in await store.statements.search("gul*", 5)] == [1]
        if start >= 2:
            subs = await store.chats.subscribers()
            assert [(s.chat.key, s.filters) for s in subs] == [("telegram:42", ("tag:Iran",))]
        if start >= 3:
            assert await store.settings.get("matrix.next_batch") == "s9"
        # New rows work on the upgraded schema and reach the index exactly once.
        added = await store.statements.add(
            parse_statement("IRAN - New one\n\nThe gulf again.\n\n#Iran"), deliver=True
        )
        assert added.deliveries == (1 if start >= 2 else 0)
        found = [s.id for s in await store.statements.search("gulf", 5)]
        assert found == ([added.statement.id, 1] if start >= 1 else [added.statement.id])
        await store.db.execute(
            "INSERT INTO statements_fts (statements_fts, rank) VALUES ('integrity-check', 1)"
        )
        assert [(t.name, t.count) for t in await store.statements.tags()] == [
            ("Iran", 2 if start >= 1 else 1)
        ]
    finally:
        await store.close()


async def test_reopening_applies_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = await Database.open(path)
    try:
        assert await db.migrate() == []
    finally:
        await db.close()


async def test_partial_upgrade_is_resumable(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    db = await Database.open(path, target_version=1)
    try:
        assert await db.migrate(2) == [2]
        assert await db.migrate() == list(range(3, LATEST + 1))
        assert await db.version() == LATEST
    finally:
        await db.close()


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    await (await Database.open(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(SchemaError) as info:
        await Store.open(path)
    message = str(info.value)
    assert f"schema version {LATEST + 1}" in message
    assert f"newer than this statement-bot knows ({LATEST})" in message
    assert "upgrade statement-bot" in message
    assert user_version(path) == LATEST + 1  # left alone


async def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrations()
    broken = [real[0], (2, "002_broken.sql", "CREATE TABLE half (a);\nSELECT * FROM nowhere;")]
    monkeypatch.setattr(db_module, "migrations", lambda: broken)
    path = tmp_path / "a.db"
    with pytest.raises(SchemaError, match=r"migration 002_broken\.sql failed: .*nowhere"):
        await Database.open(path)
    assert user_version(path) == 1  # step 1 committed, step 2 not at all
    assert "half" not in tables(path)
    assert "statements" in tables(path)
