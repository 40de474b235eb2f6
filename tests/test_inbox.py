"""The inbox folder: files that stay still are published once, bad ones are rejected with
a reason, and a crash between the database and the move publishes nothing twice."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import feedparser
import pytest
from conftest import SAMPLE

from bot import cli, inbox
from bot.config import Config, FeedsConfig, HttpConfig, InboxConfig
from bot.inbox import InboxEvent, InboxWatcher
from bot.model import Chat, ChatKind, Filter, FilterKind
from bot.service import Service
from bot.statements import parse_file
from bot.store import Store

pytestmark = pytest.mark.timeout(30)

GOOD = "SYRIA - Inbox statement {n}\n\nSolidarity from the inbox, part {n}.\n\n#Syria #Inbox\n"


async def subscribe(store: Store, n: int = 2) -> None:
    for i in range(n):
        chat = Chat("console", f"reader{i}", ChatKind.PRIVATE, f"Reader {i}")
        await store.chats.subscribe(chat, Filter(FilterKind.ALL), "all", "test")


async def deliveries(store: Store) -> int:
    return int(await store.db.fetchval("SELECT count(*) FROM deliveries"))


def watcher(store: Store, folder: Path, **kw: object) -> InboxWatcher:
    w = InboxWatcher(store, folder, interval=0.05, **kw)  # type: ignore[arg-type]
    w.prepare()
    return w


async def twice(w: InboxWatcher) -> list[InboxEvent]:
    """Two looks: the first notes the files, the second takes those that stayed still."""
    first = await w.scan()
    return first + await w.scan()


async def test_a_still_file_is_published_and_moved(store: Store, tmp_path: Path) -> None:
    await subscribe(store, 2)
    woken: list[int] = []
    w = watcher(store, tmp_path / "in", on_published=lambda: woken.append(1))
    (tmp_path / "in" / "one.txt").write_text(GOOD.format(n=1), encoding="utf-8")
    (tmp_path / "in" / ".hidden.txt").write_text(GOOD.format(n=2), encoding="utf-8")
    (tmp_path / "in" / "two.txt.part").write_text(GOOD.format(n=3), encoding="utf-8")
    assert await w.scan() == []  # seen once: not yet
    (event,) = await w.scan()
    assert (event.name, event.outcome, event.deliveries) == ("one.txt", "published", 2)
    assert event.moved_to == tmp_path / "in" / "published" / "one.txt"
    assert event.moved_to.read_text(encoding="utf-8") == GOOD.format(n=1)
    assert sorted(os.listdir(tmp_path / "in")) == [
        ".hidden.txt",
        "published",
        "rejected",
        "two.txt.part",
    ]
    assert woken == [1] and await deliveries(store) == 2
    (st,) = await store.statements.latest(5)
    assert st.title == "Inbox statement 1" and st.regions == ("Syria",)
    row = await store.db.fetchone(
        "SELECT import_key, published_by FROM statements WHERE id = ?", (st.id,)
    )
    assert row["import_key"] == f"inbox:one.txt:{st.content_hash[:16]}"
    assert row["published_by"] == "inbox"
    assert [e.action for e in await store.audit.recent()] == ["publish"]


async def test_a_half_written_file_waits(store: Store, tmp_path: Path) -> None:
    w = watcher(store, tmp_path)
    path = tmp_path / "long.txt"
    text = GOOD.format(n=7)
    with path.open("w", encoding="utf-8") as f:
        f.write(text[:20])  # "SYRIA - Inbox statem"
        f.flush()
        assert await w.scan() == []
        f.write(text[20:40])
        f.flush()
        assert await w.scan() == []  # it grew: still being written
        f.write(text[40:])
        f.flush()
        assert await w.scan() == []
    (event,) = await w.scan()
    assert event.outcome == "published"
    (st,) = await store.statements.latest(5)
    assert st.paragraphs == ("Solidarity from the inbox, part 7.",) and st.tags == (
        "Syria",
        "Inbox",
    )


async def test_a_bad_file_is_rejected_with_the_reason(store: Store, tmp_path: Path) -> None:
    w = watcher(store, tmp_path)
    (tmp_path / "bad.md").write_text("---\ntitle: x\ncolour: red\n---\nText.\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("IRAN - Only a title\n", encoding="utf-8")
    events = await twice(w)
    assert [(e.name, e.outcome) for e in events] == [
        ("bad.md", "rejected"),
        ("empty.txt", "rejected"),
    ]
    assert events[0].error is not None and events[0].error.startswith(
        "bad.md:3: unknown key 'colour' in front matter"
    )
    rejected = tmp_path / "rejected"
    assert sorted(os.listdir(rejected)) == [
        "bad.md",
        "bad.md.error",
        "empty.txt",
        "empty.txt.error",
    ]
    assert (rejected / "empty.txt.error").read_text(encoding="utf-8") == (
        "empty.txt:1: statement has a title but no text\n"
    )
    assert await store.statements.count() == 0


async def test_a_crash_before_the_move_publishes_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "bot.db"
    folder = tmp_path / "in"
    store = await Store.open(db)
    await subscribe(store, 3)
    w = watcher(store, folder)
    (folder / "one.txt").write_text(GOOD.format(n=1), encoding="utf-8")

    def broken_replace(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inbox.os, "replace", broken_replace)
    (event,) = await twice(w)
    assert event.outcome == "published" and event.moved_to is None
    assert await w.scan() == []  # not retried (nor logged) while nothing changes
    assert await deliveries(store) == 3
    await store.close()

    # "Restart": a new connection and a new watcher; the move works again.
    monkeypatch.undo()
    store = await Store.open(db)
    try:
        w = watcher(store, folder)
        (event,) = await twice(w)
        assert event.outcome == "unchanged" and event.moved_to == folder / "published" / "one.txt"
        assert await store.statements.count() == 1
        assert await deliveries(store) == 3
    finally:
        await store.close()


async def test_duplicates_and_reused_names(store: Store, tmp_path: Path) -> None:
    await subscribe(store, 1)
    await store.statements.add(parse_file(SAMPLE), import_key="file:" + SAMPLE.name)
    w = watcher(store, tmp_path)
    (tmp_path / "sample.txt").write_bytes(SAMPLE.read_bytes())
    (tmp_path / "statement.txt").write_text(GOOD.format(n=1), encoding="utf-8")
    events = await twice(w)
    assert [(e.name, e.outcome) for e in events] == [
        ("sample.txt", "duplicate"),
        ("statement.txt", "published"),
    ]
    # The same name again, with another statement: a new statement, sent, kept beside the first.
    (tmp_path / "statement.txt").write_text(GOOD.format(n=2), encoding="utf-8")
    (event,) = await twice(w)
    assert event.outcome == "published" and event.deliveries == 1
    assert event.moved_to == tmp_path / "published" / "statement-2.txt"
    assert await store.statements.count() == 3
    assert await deliveries(store) == 2


def test_watch_once_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text(GOOD.format(n=1), encoding="utf-8")
    (folder / "b.txt").write_text("", encoding="utf-8")
    db = str(tmp_path / "bot.db")
    code = cli.main(["--db", db, "watch", str(folder), "--once", "--interval", "0.1"])
    out, err = capsys.readouterr()
    assert code == 1  # one file rejected
    assert out == "a.txt: published #1, 0 deliveries queued\n"
    assert err == "rejected  b.txt:1: empty file\n"
    assert cli.main(["--db", db, "watch", str(folder), "--once", "--interval", "0.1"]) == 0
    assert capsys.readouterr().out == ""


async def test_the_service_runs_the_inbox_poller_and_atom_feed(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    config = Config(
        database=str(tmp_path / "bot.db"),
        http=HttpConfig(listen="127.0.0.1:0", base_url="https://statements.example.org"),
        inbox=InboxConfig(dir=str(folder), interval=0.05),
        feeds=FeedsConfig(),
    )
    service = Service(config, console=False)
    await service.start()
    try:
        assert service.inbox is not None and service.inbox.alive
        assert service.feeds is not None and service.feeds.alive
        (folder / "one.txt").write_text(GOOD.format(n=1), encoding="utf-8")
        for _ in range(100):
            if (folder / "published" / "one.txt").exists():
                break
            await asyncio.sleep(0.05)
        assert service.http is not None
        url = f"http://127.0.0.1:{service.http.port}/tag/inbox.atom"
        async with aiohttp.ClientSession() as session, session.get(url) as resp:
            assert resp.status == 200
            doc = feedparser.parse(await resp.read())
        assert [e.title for e in doc.entries] == ["Inbox statement 1"]
        assert doc.feed.links[0].href == "https://statements.example.org/tag/Inbox.atom"
    finally:
        await service.shutdown()
    assert not service.inbox.alive and not service.feeds.alive
