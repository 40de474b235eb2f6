"""The store through its typed API: pragmas, idempotent imports, slugs, search, lookups
by tag and region, and the outbox rows that publishing and (un)subscribing leave."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.model import Chat, ChatKind, DeliveryState, Filter, FilterKind, Statement
from bot.regions import region_key
from bot.statements import parse_statement
from bot.store import ImportOutcome, SearchTooBroad, Store, tag_key
from bot.store.statements import MAX_PREFIX_WORDS

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def make(
    headline: str,
    body: str = "Workers of the world unite.",
    tags: str = "",
    *,
    at: datetime = T0,
) -> Statement:
    """A statement through the real parser, so hashes and slugs are the real ones."""
    text = f"{headline}\n\n{body}" + (f"\n\n{tags}" if tags else "")
    return parse_statement(text, default_published_at=at)


def chat(n: int, kind: ChatKind = ChatKind.PRIVATE, platform: str = "telegram") -> Chat:
    return Chat(platform, str(n), kind, f"chat {n}")


ALL = Filter(FilterKind.ALL)


def tag_filter(tag: str) -> Filter:
    return Filter(FilterKind.TAG, tag_key(tag))


async def fts_integrity(store: Store) -> None:
    """FTS5's own check that the index matches the statements table (raises if not)."""
    await store.db.execute(
        "INSERT INTO statements_fts (statements_fts, rank) VALUES ('integrity-check', 1)"
    )


async def delivery_states(store: Store, statement_id: int) -> dict[str, dict[str, int]]:
    stats = await store.outbox.broadcast_stats("statement", statement_id)
    assert stats is not None
    return stats.counts


# --------------------------------------------------------------------------- connection


async def test_pragmas(store: Store) -> None:
    assert (await store.db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await store.db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await store.db.fetchone("PRAGMA busy_timeout"))[0] >= 1000


async def test_foreign_keys_enforced(store: Store) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await store.db.execute(
            "INSERT INTO subscriptions (chat_ref, filter_kind, created_by, created_at) "
            "VALUES (999, 'all', 'x', 0)"
        )


# --------------------------------------------------------------------------- add_many


async def test_add_then_get(store: Store) -> None:
    st = make("IRAN - Down with drones", "First paragraph.\n\nSecond one.", "#Iran #USdrones")
    result = await store.statements.add(st, import_key="file:a.txt")
    assert result.outcome is ImportOutcome.ADDED
    got = await store.statements.get(result.statement.id or 0)
    assert got is not None
    assert got.title == "Down with drones"
    assert got.slug == "down-with-drones" == result.statement.slug
    assert got.paragraphs == ("First paragraph.", "Second one.")
    assert got.regions == ("Iran",)
    assert got.tags == ("Iran", "USdrones")
    assert got.published_at == T0
    assert got.content_hash == st.content_hash
    assert await store.statements.get_by_slug("down-with-drones") == got
    assert await store.statements.get(999) is None
    assert await store.statements.get_by_slug("nope") is None


async def test_same_content_twice_is_unchanged(store: Store) -> None:
    st = make("IRAN - Title", "Body.", "#a")
    first = await store.statements.add_many([(st, "file:a.txt")])
    second = await store.statements.add_many([(st, "file:a.txt")])
    assert [r.outcome for r in first] == [ImportOutcome.ADDED]
    assert [r.outcome for r in second] == [ImportOutcome.UNCHANGED]
    assert second[0].statement.id == first[0].statement.id
    # Without an import key the content itself is the identity.
    third = await store.statements.add(st)
    assert third.outcome is ImportOutcome.UNCHANGED
    assert third.statement.id == first[0].statement.id
    assert await store.statements.count() == 1


async def test_duplicate_inside_one_batch(store: Store) -> None:
    st = make("Title", "Body.")
    results = await store.statements.add_many([(st, None), (st, None)])
    assert [r.outcome for r in results] == [ImportOutcome.ADDED, ImportOutcome.UNCHANGED]
    assert results[0].statement.id == results[1].statement.id
    assert await store.statements.count() == 1


async def test_changed_file_updates_and_replaces_tags_and_regions(store: Store) -> None:
    old = make("IRAN - Old title", "Drones over the gulf.", "#Iran #drones")
    added = await store.statements.add(old, import_key="file:a.txt")
    new = make("IRAQ / SYRIA - New title", "Sanctions everywhere.", "#sanctions")
    updated = await store.statements.add(new, import_key="file:a.txt")
    assert updated.outcome is ImportOutcome.UPDATED
    sid = added.statement.id
    assert updated.statement.id == sid
    got = await store.statements.get(sid or 0)
    assert got is not None
    assert (got.title, got.tags, got.regions) == ("New title", ("sanctions",), ("Iraq", "Syria"))
    assert got.slug == "old-title"  # links keep working
    assert await store.statements.by_tag("drones", 10) == []
    assert await store.statements.tag("drones") is None  # no statement has it any more
    assert await store.statements.region("Iran") is None
    assert await store.statements.by_region(region_key("Iran"), 10) == []
    assert [s.id for s in await store.statements.by_tag("sanctions", 10)] == [sid]
    assert [s.id for s in await store.statements.by_region(region_key("Syria"), 10)] == [sid]
    assert await store.statements.search("drones", 10) == []
    assert [s.id for s in await store.statements.search("sanctions", 10)] == [sid]
    assert [(t.name, t.count) for t in await store.statements.tags()] == [("sanctions", 1)]
    await fts_integrity(store)
    assert await store.statements.count() == 1


async def test_update_does_not_queue_deliveries(store: Store) -> None:
    await store.chats.subscribe(chat(1), ALL, "all", "telegram:1")
    first = await store.statements.add(make("A", "one"), import_key="k", deliver=True)
    again = await store.statements.add(make("A", "two"), import_key="k", deliver=True)
    assert (first.deliveries, again.outcome, again.deliveries) == (1, ImportOutcome.UPDATED, 0)


async def test_slug_collisions(store: Store) -> None:
    a = await store.statements.add(make("Foo", "one"))
    b = await store.statements.add(make("Foo 3", "two"))  # slug foo-3
    c = await store.statements.add(make("Foo", "three"))  # id 3: foo-3 is taken
    d, e = await store.statements.add_many([(make("Bar", "x"), None), (make("Bar", "y"), None)])
    slugs = [r.statement.slug for r in (a, b, c, d, e)]
    assert slugs == ["foo", "foo-3", "foo-3-2", "bar", "bar-5"]
    for r in (a, b, c, d, e):
        got = await store.statements.get_by_slug(r.statement.slug)
        assert got is not None and got.id == r.statement.id


async def test_delete_cascades(store: Store) -> None:
    r = await store.statements.add(make("IRAN - T", "words here", "#x"))
    assert await store.statements.delete(r.statement.id or 0)
    assert await store.statements.by_tag("x", 5) == []
    assert await store.statements.search("words", 5) == []
    assert await store.statements.tags() == []  # the cascade kept the counts right
    assert await store.statements.regions() == []
    assert await store.statements.tag_names() == []
    await fts_integrity(store)
    assert not await store.statements.delete(r.statement.id or 0)


async def test_find_by_hash(store: Store) -> None:
    st = make("T", "b")
    r = await store.statements.add(st)
    assert await store.statements.find_by_hash(st.content_hash) == r.statement.id
    assert await store.statements.find_by_hash("0" * 64) is None


# --------------------------------------------------------------------------- reads


async def test_latest_order_and_paging(store: Store) -> None:
    items = [(make(f"Title {i}", f"body {i}", at=T0 + timedelta(days=i)), None) for i in range(7)]
    # Import out of order: latest is by publication time, not by id.
    await store.statements.add_many(items[3:] + items[:3])
    titles = [s.title for s in await store.statements.latest(3)]
    assert titles == ["Title 6", "Title 5", "Title 4"]
    assert [s.title for s in await store.statements.latest(3, 3)] == [
        "Title 3",
        "Title 2",
        "Title 1",
    ]
    assert [s.title for s in await store.statements.latest(3, 6)] == ["Title 0"]
    assert await store.statements.latest(3, 9) == []


async def test_search(store: Store) -> None:
    a = await store.statements.add(make("Drones", "The drone fell into the sea.", at=T0))
    b = await store.statements.add(
        make("Strike", "Dockers strike at the sea port.", at=T0 + timedelta(1))
    )
    c = await store.statements.add(make("Café", "Réunion about the drones.", at=T0 + timedelta(2)))
    ids = {"a": a.statement.id, "b": b.statement.id, "c": c.statement.id}

    async def found(words: str) -> list[int | None]:
        return [s.id for s in await store.statements.search(words, 10)]

    assert await found("sea") == [ids["b"], ids["a"]]  # newest first
    assert await found("SEA port") == [ids["b"]]  # every word must match
    assert await found("drone") == [ids["a"]]
    assert await found("drone*") == [ids["c"], ids["a"]]
    assert await found("drones") == [ids["c"], ids["a"]]  # body or title
    assert await found("reunion") == [ids["c"]]  # diacritics folded
    assert await found("cafe") == [ids["c"]]
    assert await found("nothing") == []
    assert await found(
        "sea",
    ) == await found("  sea  ")


@pytest.mark.parametrize(
    "words",
    [
        '"',
        'drone"',
        "'",
        "(",
        ")",
        "*",
        "-",
        "^sea",
        "sea:port",
        "title:drone",
        "NEAR(sea port)",
        "sea AND",
        "OR",
        "NOT sea",
        "a + b",
        "{sea}",
        "“drone”",
        "drone''",
        "\\",
        "%_",
        "",
        "   ",
    ],
)
async def test_search_never_raises(store: Store, words: str) -> None:
    await store.statements.add(make("Drone", "sea port drone AND or not"))
    results = await store.statements.search(words, 5)
    assert isinstance(results, list)


async def test_prefix_search(store: Store) -> None:
    a = await store.statements.add(make("One", "A drone fell.", at=T0))
    b = await store.statements.add(make("Two", "Drones everywhere.", at=T0 + timedelta(1)))
    c = await store.statements.add(
        make("Three", "Dromedaries and a Réunion.", at=T0 + timedelta(2))
    )
    ids = [r.statement.id for r in (c, b, a)]

    async def found(words: str) -> list[int | None]:
        return [s.id for s in await store.statements.search(words, 10)]

    assert await found("drone*") == ids[1:]
    assert await found("dro*") == ids
    assert await found("DRO*") == ids
    assert await found("dro* fell") == [ids[2]]
    assert await found("réu*") == [ids[0]] == await found("reu*")
    assert await found("xyz*") == []
    assert await found("drone* xyz*") == []
    # A statement added later is found by its new words too.
    d = await store.statements.add(make("Four", "Droplets.", at=T0 + timedelta(3)))
    assert await found("drop*") == [d.statement.id]


async def test_prefix_matching_too_many_words_is_refused(store: Store) -> None:
    many = " ".join(f"zz{i:03d}" for i in range(MAX_PREFIX_WORDS + 1))
    await store.statements.add(make("Many", many))
    with pytest.raises(SearchTooBroad) as info:
        await store.statements.search("zz*", 5)
    assert info.value.prefix == "zz"
    assert len(await store.statements.search("zz00*", 5)) == 1  # 10 words: fine


async def test_prefixes_expand_to_the_words_the_tokenizer_made(store: Store) -> None:
    r = await store.statements.add(
        make("Words", "US-imperialism, it’s Réunion! snake_case ÉCOLE 26th")
    )
    ident = [r.statement.id]
    for prefix in ("imperial*", "reun*", "réun*", "snak*", "cas*", "écol*", "ECO*", "26*", "u*"):
        assert [s.id for s in await store.statements.search(prefix, 5)] == ident, prefix
    assert [s.id for s in await store.statements.search("snake_ca*", 5)] == ident  # snake AND ca*
    assert await store.statements.search("snake_x*", 5) == []


async def test_prefixes_forget_words_of_deleted_statements(store: Store) -> None:
    many = " ".join(f"zz{i:03d}" for i in range(MAX_PREFIX_WORDS + 1))
    gone = await store.statements.add(make("Many", many))
    kept = await store.statements.add(make("One", "zz999 stays"))
    assert gone.statement.id is not None
    with pytest.raises(SearchTooBroad):
        await store.statements.search("zz*", 5)
    assert await store.statements.delete(gone.statement.id)
    assert [s.id for s in await store.statements.search("zz*", 5)] == [kept.statement.id]


async def test_search_operators_are_words(store: Store) -> None:
    r = await store.statements.add(make("Title", "We say NOT and OR here."))
    assert [s.id for s in await store.statements.search("NOT OR", 5)] == [r.statement.id]


async def test_search_paging(store: Store) -> None:
    await store.statements.add_many(
        [(make(f"T{i}", "common word", at=T0 + timedelta(hours=i)), None) for i in range(8)]
    )
    first = await store.statements.search("common", 5)
    rest = await store.statements.search("common", 5, 5)
    assert len(first) == 5 and len(rest) == 3
    assert {s.id for s in first}.isdisjoint({s.id for s in rest})


async def test_tags_and_regions_case_insensitive(store: Store) -> None:
    r = await store.statements.add(make("IRAN - T", "b", "#USdrones"))
    sid = r.statement.id
    for spelling in ("USdrones", "usdrones", "#USDRONES"):
        named = await store.statements.tag(spelling)
        assert named is not None and named.name == "USdrones"
        assert [s.id for s in await store.statements.by_tag(named.key, 5)] == [sid]
    assert [s.id for s in await store.statements.by_tag(tag_key("USDRONES"), 5)] == [sid]
    assert await store.statements.tag("nodrones") is None


@pytest.mark.parametrize(
    "spelling", ["Iran", "IRAN", "iran", "IRN", "ir", "IR", "Islamic Republic of Iran"]
)
async def test_region_matching_through_pycountry(store: Store, spelling: str) -> None:
    r = await store.statements.add(make("IRAN - T", "b"))
    named = await store.statements.region(spelling)
    assert named is not None and (named.key, named.name) == ("cc:ir", "Iran")
    assert [s.id for s in await store.statements.by_region(named.key, 5)] == [r.statement.id]


async def test_free_region(store: Store) -> None:
    r = await store.statements.add(make("KURDISTAN - T", "b"))
    for spelling in ("Kurdistan", "KURDISTAN", "kurdistan"):
        named = await store.statements.region(spelling)
        assert named is not None and named.name == "Kurdistan"
        assert [s.id for s in await store.statements.by_region(named.key, 5)] == [r.statement.id]
    assert await store.statements.region("Iran") is None
    assert await store.statements.region("Atlantis") is None


async def test_tag_and_region_counts(store: Store) -> None:
    await store.statements.add_many(
        [
            (make("IRAN - A", "a", "#Iran #war"), None),
            (make("IRAN / IRAQ - B", "b", "#iran"), None),
            (make("KURDISTAN - C", "c", "#war #Iran"), None),
        ]
    )
    tags = [(t.name, t.count) for t in await store.statements.tags()]
    assert tags == [("Iran", 3), ("war", 2)]  # first spelling wins
    regions = [(r.name, r.count) for r in await store.statements.regions()]
    assert regions == [("Iran", 2), ("Iraq", 1), ("Kurdistan", 1)]
    assert sorted(await store.statements.tag_names()) == ["Iran", "war"]
    assert await store.statements.tags(limit=1) == (await store.statements.tags())[:1]


# --------------------------------------------------------------------------- deliveries


async def test_one_delivery_per_chat(store: Store) -> None:
    one, two, three, four = chat(1), chat(2), chat(3, ChatKind.GROUP), chat(4)
    await store.chats.subscribe(one, ALL, "all", "telegram:1")
    await store.chats.subscribe(one, tag_filter("Iran"), "Iran", "telegram:1")
    await store.chats.subscribe(two, tag_filter("Iran"), "Iran", "telegram:2")
    await store.chats.subscribe(two, Filter(FilterKind.REGION, "cc:ir"), "Iran", "telegram:2")
    await store.chats.subscribe(three, tag_filter("other"), "other", "telegram:3")
    await store.chats.subscribe(four, Filter(FilterKind.REGION, "cc:iq"), "Iraq", "telegram:4")
    st = make("IRAN - T", "b", "#Iran")
    assert await store.outbox.audience(["iran"], ["cc:ir"]) == 2
    result = await store.statements.add(st, deliver=True, published_by="telegram:9")
    assert result.deliveries == 2
    due = await store.outbox.due("telegram", 100)
    assert sorted(d.chat.chat_id for d in due) == ["1", "2"]
    assert all(d.statement_id == result.statement.id for d in due)
    assert all(d.state is DeliveryState.PENDING and d.attempts == 0 for d in due)
    # Without `deliver` (an archive import) nothing is queued.
    quiet = await store.statements.add(make("IRAN - U", "c", "#Iran"))
    assert quiet.deliveries == 0
    assert len(await store.outbox.due("telegram", 100)) == 2


async def test_inactive_chats_are_not_delivered_to(store: Store) -> None:
    await store.chats.subscribe(chat(1), ALL, "all", "u")
    await store.chats.subscribe(chat(2), ALL, "all", "u")
    assert await store.chats.deactivate("telegram", "2", "blocked") == 1
    result = await store.statements.add(make("T", "b"), deliver=True)
    assert result.deliveries == 1
    assert [d.chat.chat_id for d in await store.outbox.due("telegram", 10)] == ["1"]
    assert await store.outbox.audience_for_filter(ALL) == 1
    assert await store.chats.counts() == {"chats": 1, "subscriptions": 1, "subscribed": 1}


async def test_unsubscribe_drops_pending(store: Store) -> None:
    one, two = chat(1), chat(2)
    await store.chats.subscribe(one, ALL, "all", "u")
    await store.chats.subscribe(one, tag_filter("x"), "x", "u")
    await store.chats.subscribe(two, ALL, "all", "u")
    result = await store.statements.add(make("T", "b", "#x"), deliver=True)
    assert await store.chats.unsubscribe(one, None) == 2
    assert await store.chats.for_chat(one) == []
    assert [d.chat.chat_id for d in await store.outbox.due("telegram", 10)] == ["2"]
    assert await delivery_states(store, result.statement.id or 0) == {
        "telegram": {"dropped": 1, "pending": 1}
    }
    # One filter only: the other subscription stays.
    await store.chats.subscribe(two, tag_filter("x"), "x", "u")
    assert await store.chats.unsubscribe(two, tag_filter("x")) == 1
    assert [s.filter for s in await store.chats.for_chat(two)] == [ALL]
    assert await store.chats.unsubscribe(two, tag_filter("x")) == 0


async def test_deactivate_drops_pending_and_resubscribe_reactivates(store: Store) -> None:
    one = chat(1, ChatKind.GROUP)
    await store.chats.subscribe(one, ALL, "all", "u")
    result = await store.statements.add(make("T", "b"), deliver=True)
    assert await store.chats.deactivate("telegram", "1", "kicked") == 1
    assert await store.outbox.due("telegram", 10) == []
    assert await delivery_states(store, result.statement.id or 0) == {"telegram": {"dropped": 1}}
    found = await store.chats.get("telegram", "1")
    assert found is not None and found[1] is False
    assert await store.chats.for_chat(one) == []
    assert [s.filter for s in await store.chats.for_chat(one, active_only=False)] == [ALL]
    assert await store.chats.deactivate("telegram", "404", "gone") == 0
    # The chat adds the bot back and subscribes again: the same subscription, active.
    sub, created = await store.chats.subscribe(one, ALL, "all", "v")
    assert created and sub.active and sub.created_by == "v"
    again, created = await store.chats.subscribe(one, ALL, "all", "v")
    assert not created and again.id == sub.id


async def test_move_chat(store: Store) -> None:
    old = chat(-100, ChatKind.GROUP)
    await store.chats.subscribe(old, tag_filter("x"), "x", "u")
    result = await store.statements.add(make("T", "b", "#x"), deliver=True)
    await store.chats.move("telegram", "-100", "-100200")
    assert await store.chats.get("telegram", "-100") is None
    moved = Chat("telegram", "-100200", ChatKind.GROUP)
    assert [s.filter for s in await store.chats.for_chat(moved)] == [tag_filter("x")]
    due = await store.outbox.due("telegram", 10)
    assert [(d.chat.chat_id, d.statement_id) for d in due] == [("-100200", result.statement.id)]


async def test_move_chat_onto_known_chat(store: Store) -> None:
    """The bot already knew the supergroup: subscriptions move, the old row is retired."""
    old, new = chat(-5, ChatKind.GROUP), chat(-1005, ChatKind.GROUP)
    await store.chats.subscribe(old, tag_filter("x"), "x", "u")
    await store.chats.subscribe(new, ALL, "all", "u")
    await store.chats.move("telegram", "-5", "-1005")
    filters = sorted(str(s.filter) for s in await store.chats.for_chat(new))
    assert filters == ["all", "tag:x"]
    gone = await store.chats.get("telegram", "-5")
    assert gone is not None and gone[1] is False


async def test_announce_with_tag_filter(store: Store) -> None:
    await store.chats.subscribe(chat(1), ALL, "all", "u")
    await store.chats.subscribe(chat(2), tag_filter("x"), "x", "u")
    await store.chats.subscribe(chat(3), tag_filter("y"), "y", "u")
    announcement_id, count = await store.outbox.announce("Hello", "cli", tag_filter("x"), "x")
    assert count == 2
    assert await store.outbox.announcement_text(announcement_id) == "Hello"
    due = await store.outbox.due("telegram", 10)
    assert sorted((d.chat.chat_id, d.announcement_id) for d in due) == [
        ("1", announcement_id),
        ("2", announcement_id),
    ]


async def test_subscribers_list(store: Store) -> None:
    await store.chats.subscribe(chat(1), ALL, "all", "u")
    await store.chats.subscribe(chat(1), tag_filter("Iran"), "Iran", "u")
    await store.chats.subscribe(
        chat(7, platform="matrix"), Filter(FilterKind.REGION, "cc:ir"), "Iran", "u"
    )
    subs = await store.chats.subscribers()
    assert [(s.chat.key, s.filters) for s in subs] == [
        ("matrix:7", ("region:Iran",)),
        ("telegram:1", ("all", "tag:Iran")),
    ]
    assert [s.chat.key for s in await store.chats.subscribers("telegram")] == ["telegram:1"]


# --------------------------------------------------------------------------- audit, settings


async def test_audit_and_settings(store: Store) -> None:
    await store.audit.record("telegram:1", "publish", "statement 1")
    await store.audit.record("telegram:2", "refused:stats", "telegram:5")
    entries = await store.audit.recent()
    assert [(e.actor, e.action, e.detail) for e in entries] == [
        ("telegram:2", "refused:stats", "telegram:5"),
        ("telegram:1", "publish", "statement 1"),
    ]
    assert await store.settings.get("matrix.next_batch") is None
    await store.settings.set("matrix.next_batch", "s1")
    await store.settings.set("matrix.next_batch", "s2")
    assert await store.settings.get("matrix.next_batch") == "s2"


async def test_backup_is_a_working_database(store: Store, tmp_path: Path) -> None:
    await store.statements.add(make("IRAN - Backed up", "safe words", "#x"))
    await store.backup(tmp_path / "copy" / "backup.db")
    copy = await Store.open(tmp_path / "copy" / "backup.db")
    try:
        assert [s.title for s in await copy.statements.search("safe", 5)] == ["Backed up"]
    finally:
        await copy.close()


async def test_commits_are_checkpointed_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits do not checkpoint (wal_autocheckpoint 0); the Checkpointer copies the log
    into the database file while the store stays open, and cuts the log back."""
    from polling import eventually

    from bot.store import db as db_module

    monkeypatch.setattr(db_module, "CHECKPOINT_GAP", 0.01)
    path = tmp_path / "bot.db"
    store = await Store.open(path)
    try:
        assert await store.db.fetchval("PRAGMA wal_autocheckpoint") == 0
        before = path.stat().st_size
        body = "words " * 500
        await store.statements.add_many(
            [(make(f"T{i}", f"{body} {i}", at=T0 + timedelta(hours=i)), None) for i in range(200)]
        )
        await eventually(lambda: path.stat().st_size > before + 500_000, what="log copied back")
        # Past the size limit the log file itself is emptied (TRUNCATE).
        monkeypatch.setattr(db_module, "WAL_SIZE_LIMIT", 0)
        await store.statements.add(make("One more", "after the limit"))
        wal = Path(f"{path}-wal")
        await eventually(lambda: wal.stat().st_size == 0, what="log truncated")
        assert len(await store.statements.search("limit", 5)) == 1
    finally:
        await store.close()
