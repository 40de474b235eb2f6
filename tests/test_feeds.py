"""Website feeds: entries → statements, the poller against a local site, and the admin
commands through the console.

Why a real HTTP server (tests/feed_server.py) and not a mocked session: conditional GETs,
304s, redirects, time-outs and size caps are what aiohttp and the server do together;
a mock would only repeat what the code assumes.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import ConsoleChat
from feed_server import ATOM_TYPE, FeedServer, atom, item, rss, serving

from bot import cli
from bot.config import ConfigError, FeedsConfig, load_config
from bot.feedparse import (
    FeedFormatError,
    category_tag,
    entry_statement,
    html_paragraphs,
    parse_feed,
)
from bot.feeds import FeedPoller, next_delay
from bot.model import Chat, ChatKind, Filter, FilterKind
from bot.regions import region_key
from bot.statements import StatementError
from bot.store import Store
from bot.store.feeds import Feed
from handlers.context import Services

pytestmark = pytest.mark.timeout(30)

INTERVAL = 900.0


@pytest_asyncio.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    async with serving() as server:
        yield server


def config(**changes: object) -> FeedsConfig:
    cfg = FeedsConfig(timeout=2.0, max_bytes=200_000)
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


class Clock:
    """The poller's time, moved by the test: schedules are checked without waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def poller(store: Store, cfg: FeedsConfig | None = None, **kw: object) -> FeedPoller:
    return FeedPoller(store, cfg or config(), rng=random.Random(7), **kw)  # type: ignore[arg-type]


async def add_feed(store: Store, url: str, **kw: object) -> Feed:
    return await store.feeds.add(url, added_by="console:local", **kw)  # type: ignore[arg-type]


async def poll(p: FeedPoller, store: Store, feed_id: int):  # type: ignore[no-untyped-def]
    feed = await store.feeds.get(feed_id)
    assert feed is not None
    return await p.poll_feed(feed)


async def subscribe_all(store: Store, n: int = 2) -> None:
    for i in range(n):
        chat = Chat("console", f"reader{i}", ChatKind.PRIVATE, f"Reader {i}")
        await store.chats.subscribe(chat, Filter(FilterKind.ALL), "all", "test")


async def deliveries(store: Store, statement_id: int | None = None) -> int:
    if statement_id is None:
        return int(await store.db.fetchval("SELECT count(*) FROM deliveries"))
    return int(
        await store.db.fetchval(
            "SELECT count(*) FROM deliveries WHERE statement_id = ?", (statement_id,)
        )
    )


async def statement_titles(store: Store) -> list[str]:
    return sorted(s.title for s in await store.statements.latest(100))


# --------------------------------------------------------------------------- HTML and entries


def test_html_is_sanitised_to_paragraphs() -> None:
    markup = (
        '<div class="post"><p>Hello <b>world</b> &amp; friends<br/>second line</p>'
        "<script>alert('x')</script><style>p {color: red}</style>"
        "<ul><li>one</li><li>two</li></ul>\n<p>Less &lt;than&gt; &quot;quoted&quot;&nbsp;end"
        '<img src="x" onerror="steal()">\n  wrapped   source\nline</p><!-- comment --></div>'
    )
    assert html_paragraphs(markup) == [
        "Hello world & friends\nsecond line",
        "one",
        "two",
        'Less <than> "quoted" end wrapped source line',
    ]
    assert html_paragraphs("plain words, no tags") == ["plain words, no tags"]
    assert html_paragraphs("<p> </p><p></p>") == []


def test_category_tags() -> None:
    assert category_tag("imperialism") == "imperialism"
    assert category_tag("Middle East") == "MiddleEast"
    assert category_tag("press releases") == "PressReleases"
    assert category_tag("#Iran") == "Iran"
    assert category_tag("2024") is None
    assert category_tag("Uncategorized") is None
    assert category_tag("https://org.example/category/x") is None


def _entry(**kw: object) -> dict[str, object]:
    """A feedparser entry from a one-item RSS document."""
    doc = parse_feed(rss([item(1, **kw)]).encode(), url="https://org.example/feed")  # type: ignore[arg-type]
    return doc.entries[0]


def test_entry_becomes_a_statement_like_a_file() -> None:
    entry = _entry(
        title="USA / MEXICO - Down with the wall #NoWall",
        text="<p>We <em>condemn</em> the wall. #Solidarity</p><p>Second.</p><p>#Border #USA</p>",
        categories=["Middle East", "Uncategorized"],
    )
    fe = entry_statement(entry, tag="Org", region="IRAN", language="en")
    st = fe.statement
    assert st.title == "Down with the wall #NoWall"
    assert st.regions == ("USA", "Mexico", "Iran")
    assert st.tags == ("Org", "MiddleEast", "Border", "USA", "NoWall", "Solidarity")
    assert st.paragraphs == ("We condemn the wall. #Solidarity", "Second.")
    assert st.source == "https://org.example/statements/1"
    assert st.published_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert st.language == "en"
    assert st.slug == "down-with-the-wall-nowall"
    assert fe.guid == "urn:statement:1" and fe.link == "https://org.example/statements/1"
    assert fe.dated and len(st.content_hash) == 64
    # Same words → same hashes: the entry is recognised when it comes again.
    again = entry_statement(entry, tag="Org", region="IRAN", language="en")
    assert again.statement.content_hash == st.content_hash
    assert again.text_hash == fe.text_hash


def test_entry_without_date_keeps_one_hash_and_without_text_is_refused() -> None:
    undated = _entry(date=None)
    one = entry_statement(undated, first_seen=datetime(2024, 1, 1, tzinfo=UTC))
    two = entry_statement(undated, first_seen=datetime(2024, 6, 1, tzinfo=UTC))
    assert not one.dated and one.statement.published_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert one.statement.content_hash == two.statement.content_hash
    with pytest.raises(StatementError, match="title but no text"):
        entry_statement(_entry(text=""))
    untitled = entry_statement(_entry(title="", text="<p>" + "word " * 60 + "</p>"))
    assert untitled.statement.title.endswith("…") and len(untitled.statement.title) <= 100


def test_plain_text_description_and_atom() -> None:
    fe = entry_statement(_entry(text="Line one.\n\nLine two & more.", html=False))
    assert fe.statement.paragraphs == ("Line one.", "Line two & more.")
    doc = parse_feed(
        atom([item(2, categories=["imperialism"])]).encode(), url="https://org.example/atom"
    )
    assert doc.title == "Org statements (Atom)"
    st = entry_statement(doc.entries[0]).statement
    assert st.regions == ("Iran",) and st.tags == ("imperialism",)
    assert st.paragraphs == ("First paragraph of statement 2.", "Second paragraph.")


def test_documents_that_are_no_feed_are_refused() -> None:
    broken = rss([item(1), item(2)])[:-40]  # cut off mid-item, as a dropped connection would
    with pytest.raises(FeedFormatError, match="not well-formed XML"):
        parse_feed(broken.encode(), url="https://org.example/feed")
    with pytest.raises(FeedFormatError, match="not an RSS or Atom feed"):
        parse_feed(b"<!doctype html><html><body>hi</body></html>", url="https://org.example/")


# --------------------------------------------------------------------------- polling


async def test_first_fetch_imports_history_silently_then_new_entries_are_sent(
    store: Store, feed_server: FeedServer
) -> None:
    await subscribe_all(store, 2)
    feed_server.set("news", rss([item(2), item(1)]))
    feed = await add_feed(store, feed_server.feed_url("news"), tag="Org")
    woken: list[int] = []
    p = poller(store, on_published=lambda: woken.append(1))
    try:
        first = await poll(p, store, feed.id)
        assert (first.status, first.added, first.sent, first.deliveries) == ("ok", 2, 0, 0)
        assert await deliveries(store) == 0 and woken == []
        # The back catalogue, oldest first, in the archive with the feed's tag.
        latest = await store.statements.latest(10)
        assert [s.title for s in latest] == ["Statement number 2", "Statement number 1"]
        assert latest[0].id > latest[1].id
        assert latest[0].tags == ("Org",) and latest[0].regions == ("Iran",)

        # Unchanged: a conditional GET, answered 304, changes nothing.
        second = await poll(p, store, feed.id)
        assert second.status == "not_modified"
        last = feed_server.hits("/f/news")[-1]
        assert last.headers["If-None-Match"].startswith('"')
        assert "If-Modified-Since" in last.headers

        feed_server.set("news", rss([item(3), item(2), item(1)]))
        third = await poll(p, store, feed.id)
        assert (third.added, third.sent, third.deliveries) == (1, 1, 2)
        assert woken == [1]
        (new_id,) = third.statement_ids
        assert await deliveries(store, new_id) == 2
        published_by = await store.db.fetchval(
            "SELECT published_by FROM statements WHERE id = ?", (new_id,)
        )
        assert published_by == f"feed:{feed.id}"
        row = await store.db.fetchone("SELECT import_key FROM statements WHERE id = ?", (new_id,))
        assert row["import_key"] == f"feed:{feed.id}:urn:statement:3"
        stored = await store.feeds.get(feed.id)
        assert stored is not None and stored.entries == 3 and stored.errors == 0
        assert stored.title == "Org statements" and stored.primed
    finally:
        await p.close()


async def test_import_history_off_only_notes_the_first_entries(
    store: Store, feed_server: FeedServer
) -> None:
    await subscribe_all(store, 1)
    feed_server.set("news", atom([item(1), item(2)]), ATOM_TYPE)
    feed = await add_feed(store, feed_server.feed_url("news"), import_history=False)
    p = poller(store)
    try:
        first = await poll(p, store, feed.id)
        assert (first.added, first.noted) == (0, 2)
        assert await store.statements.count() == 0
        feed_server.set("news", atom([item(3), item(1), item(2)]), ATOM_TYPE)
        second = await poll(p, store, feed.id)
        assert (second.added, second.sent, second.deliveries) == (1, 1, 1)
        assert await statement_titles(store) == ["Statement number 3"]
    finally:
        await p.close()


async def test_duplicates_edits_and_a_restart_publish_nothing_twice(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    path = tmp_path / "bot.db"
    store = await Store.open(path)
    await subscribe_all(store, 1)
    feed_server.set("news", rss([item(1)]))
    feed = await add_feed(store, feed_server.feed_url("news"))
    p = poller(store)
    await poll(p, store, feed.id)
    # The same entry twice, and the same text again under a new guid and link.
    copy = {**item(2), "guid": "urn:copy", "link": "https://org.example/copy"}
    feed_server.set("news", rss([item(2), item(2), copy, item(1)]))
    report = await poll(p, store, feed.id)
    assert (report.added, report.sent) == (1, 1)
    assert await store.statements.count() == 2
    assert await deliveries(store) == 1

    # An edited entry: same guid, new words → the statement is updated, not sent again.
    edited = item(
        2, text="<p>First paragraph of statement 2, corrected.</p><p>Second paragraph.</p>"
    )
    feed_server.set("news", rss([edited, copy, item(1)]))
    report = await poll(p, store, feed.id)
    assert (report.added, report.updated, report.deliveries) == (0, 1, 0)
    (st,) = [s for s in await store.statements.latest(10) if s.title == "Statement number 2"]
    assert st.paragraphs[0] == "First paragraph of statement 2, corrected."
    assert await deliveries(store) == 1
    await p.close()
    await store.close()

    # A restart: a new poller and a new connection to the same database. The site has
    # dropped its validators (no 304), so every entry is looked at again.
    feed_server.conditional = False
    feed_server.set("news", rss([edited, copy, item(1)], extra="<ttl>60</ttl>"))
    store = await Store.open(path)
    p = poller(store)
    try:
        report = await poll(p, store, feed.id)
        assert report.status == "ok"
        assert (report.added, report.updated, report.deliveries) == (0, 0, 0)
        assert await store.statements.count() == 2
        assert await deliveries(store) == 1
    finally:
        await p.close()
        await store.close()


async def test_held_entries_wait_for_release(
    store: Store, feed_server: FeedServer, console: ConsoleChat, services: Services
) -> None:
    await subscribe_all(store, 2)
    woken: list[int] = []
    services.on_enqueued = lambda: woken.append(1)
    feed_server.set("news", rss([item(1)]))
    feed = await add_feed(store, feed_server.feed_url("news"), hold=True)
    p = poller(store)
    try:
        await poll(p, store, feed.id)
        feed_server.set("news", rss([item(3), item(2), item(1)]))
        report = await poll(p, store, feed.id)
        assert (report.added, report.held, report.deliveries) == (2, 2, 0)
        two, three = report.statement_ids
        assert await deliveries(store) == 0

        held = await console.ask("/feeds held")
        assert held == (
            "Held feed entries\n"
            f"#{two} Statement number 2 (feed #{feed.id})\n"
            f"#{three} Statement number 3 (feed #{feed.id})\n\n"
            "/feeds release <id> sends one to subscribers, /feeds drop <id> never sends it."
        )
        assert await console.ask(f"/feeds release {two}") == (
            f"Statement #{two} released; sending it to 2 chats."
        )
        assert await deliveries(store, two) == 2 and woken == [1]
        assert await console.ask(f"/feeds release {two}") == f"Statement #{two} is not held."
        assert await console.ask(f"/feeds drop {three}") == (
            f"Statement #{three} will not be sent; it stays in the archive."
        )
        assert await deliveries(store, three) == 0
        assert await console.ask("/feeds held") == "No feed entry is waiting for release."
        # The release is reported to the admin who released it, like a /publish.
        row = await store.db.fetchone(
            "SELECT published_by, reported FROM statements WHERE id = ?", (two,)
        )
        assert (row["published_by"], row["reported"]) == ("console:local", 0)
        # Seen again later: still neither held nor sent.
        feed_server.conditional = False
        report = await poll(p, store, feed.id)
        assert (report.added, report.held, report.deliveries) == (0, 0, 0)
    finally:
        await p.close()


async def test_a_burst_of_new_entries_is_held(store: Store, feed_server: FeedServer) -> None:
    await subscribe_all(store, 1)
    feed_server.set("news", rss([item(1)]))
    feed = await add_feed(store, feed_server.feed_url("news"))
    p = poller(store, config(flood_limit=2))
    try:
        await poll(p, store, feed.id)
        feed_server.set("news", rss([item(n) for n in range(1, 6)]))
        report = await poll(p, store, feed.id)
        assert (report.added, report.held, report.deliveries) == (4, 4, 0)
        assert len(await store.feeds.held()) == 4
    finally:
        await p.close()


async def test_errors_back_off_and_show_in_feeds(
    store: Store, feed_server: FeedServer, console: ConsoleChat
) -> None:
    feed = await add_feed(store, feed_server.url("/status/500"))
    clock = Clock()
    p = poller(store, clock=clock)
    try:
        delays = []
        for _ in range(4):
            report = await poll(p, store, feed.id)
            assert report.status == "error"
            delays.append(report.next_fetch_at - clock.now)
        # Doubling from the interval, each ±10%.
        for n, delay in enumerate(delays):
            assert INTERVAL * 2**n * 0.9 <= delay <= INTERVAL * 2**n * 1.1, delays
        stored = await store.feeds.get(feed.id)
        assert stored is not None and stored.errors == 4
        assert stored.last_error == "HTTP 500 Internal Server Error"
        shown = await console.ask("/feeds")
        assert shown.startswith(f"Feeds\n\n#{feed.id} {feed_server.url('/status/500')}\n")
        assert "every 15 min · 0 statements, 0 held" in shown
        assert re.search(
            r"last fetch now: error \(4 in a row\): HTTP 500 Internal Server Error"
            r" · next poll in \d+ (min|h)$",
            shown,
        ), shown
        # Capped at backoff_max.
        assert next_delay(INTERVAL, 30, p.config, random.Random(1)) <= p.config.backoff_max * 1.1
        # The site recovers: the error state is cleared.
        feed_server.set("news", rss([item(1)]))
        await store.db.execute(
            "UPDATE feeds SET url = ? WHERE id = ?", (feed_server.feed_url("news"), feed.id)
        )
        assert (await poll(p, store, feed.id)).status == "ok"
        stored = await store.feeds.get(feed.id)
        assert stored is not None and stored.errors == 0 and stored.last_error is None
        assert "last fetch now: ok" in await console.ask("/feeds")
    finally:
        await p.close()


async def test_retry_after_is_honoured(store: Store, feed_server: FeedServer) -> None:
    feed_server.retry_after = "7200"
    feed = await add_feed(store, feed_server.url("/status/429"))
    clock = Clock()
    p = poller(store, clock=clock)
    try:
        report = await poll(p, store, feed.id)
        assert report.error == "HTTP 429 Too Many Requests"
        assert report.next_fetch_at - clock.now >= 7200
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("path", "cfg", "error"),
    [
        ("/slow", {"timeout": 0.3}, "no complete answer within 0.3 s"),
        ("/huge", {"max_bytes": 100_000}, "the feed is larger than 100000 bytes"),
        ("/declared", {"max_bytes": 100_000}, "the feed is larger than 100000 bytes"),
        ("/loop/a", {"max_redirects": 3}, "more than 3 redirects"),
        ("/page", {}, "not an RSS or Atom feed (a web page?)"),
        ("/f/broken", {}, "not well-formed XML"),
        ("/f/missing", {}, "HTTP 404 Not Found"),
    ],
)
async def test_misbehaving_sites_put_the_feed_in_error(
    store: Store, feed_server: FeedServer, path: str, cfg: dict[str, object], error: str
) -> None:
    feed_server.slow_seconds = 3.0
    feed_server.set("broken", rss([item(1), item(2)])[:-40])
    feed = await add_feed(store, feed_server.url(path))
    p = poller(store, config(**cfg))
    try:
        started = time.monotonic()
        report = await poll(p, store, feed.id)
        assert report.status == "error"
        assert report.error is not None and report.error.startswith(error), report.error
        assert time.monotonic() - started < 2.5
        assert await store.statements.count() == 0
        stored = await store.feeds.get(feed.id)
        assert stored is not None and stored.errors == 1 and stored.last_error == report.error
    finally:
        await p.close()


async def test_unreachable_site(store: Store) -> None:
    feed = await add_feed(store, "http://127.0.0.1:9/feed.xml")  # the discard port: closed
    p = poller(store)
    try:
        report = await poll(p, store, feed.id)
        assert report.error is not None and report.error.startswith("cannot connect")
    finally:
        await p.close()


async def test_a_permanent_redirect_is_followed(store: Store, feed_server: FeedServer) -> None:
    feed_server.set("moved", atom([item(1)]), ATOM_TYPE)
    feed = await add_feed(store, feed_server.url("/redirect/moved"))
    p = poller(store)
    try:
        report = await poll(p, store, feed.id)
        assert (report.status, report.added) == ("ok", 1)
    finally:
        await p.close()


async def test_the_running_poller_fetches_due_feeds(store: Store, feed_server: FeedServer) -> None:
    feed_server.set("news", rss([item(1)]))
    p = poller(store, rescan=0.05)
    await p.start()
    try:
        assert p.alive
        await add_feed(store, feed_server.feed_url("news"))
        for _ in range(100):
            if await store.statements.count():
                break
            await asyncio.sleep(0.05)
        assert await statement_titles(store) == ["Statement number 1"]
    finally:
        await p.stop()
    assert not p.alive


async def test_subscriptions_by_tag_and_region_match_feed_defaults(
    store: Store, feed_server: FeedServer
) -> None:
    iran = Chat("console", "iran", ChatKind.GROUP, "Iran news")
    syria = Chat("console", "syria", ChatKind.GROUP, "Syria news")
    await store.chats.subscribe(iran, Filter(FilterKind.REGION, region_key("Iran")), "Iran", "t")
    await store.chats.subscribe(syria, Filter(FilterKind.TAG, "syria"), "Syria", "t")
    feed_server.set("news", rss([item(1, title="Statement without region")]))
    feed = await add_feed(store, feed_server.feed_url("news"), tag="Syria")
    p = poller(store)
    try:
        await poll(p, store, feed.id)
        feed_server.set("news", rss([item(2), item(1, title="Statement without region")]))
        report = await poll(p, store, feed.id)
        assert report.deliveries == 2  # the IRAN headline and the feed's #Syria
    finally:
        await p.close()


# --------------------------------------------------------------------------- admin commands


async def test_addfeed_feeds_delfeed(
    console: ConsoleChat, visitor: ConsoleChat, store: Store, feed_server: FeedServer
) -> None:
    feed_server.set("news", rss([item(1), item(2)]))
    url = feed_server.feed_url("news")
    assert await console.ask("/feeds") == "No feed is polled. /addfeed <url> adds one."
    assert await console.ask(f"/addfeed {url} tag:#Org region:SOUTH_AFRICA interval:30 hold") == (
        "Feed #1 added: Org statements (2 entries now). Its current entries go into the archive "
        "without being sent. New entries after that are archived and held until an admin "
        "releases them (/feeds held)."
    )
    (feed,) = await store.feeds.all()
    assert (feed.tag, feed.region, feed.hold, feed.interval) == ("Org", "South Africa", True, 1800)
    assert await console.ask(f"/addfeed {url}") == "That feed is already polled as #1."
    shown = await console.ask("/feeds")
    assert shown == (
        "Feeds\n\n"
        f"#1 {url} — Org statements\n"
        "tag #Org · region South Africa · held for release · every 30 min · 0 statements, 0 held\n"
        "not fetched yet · next poll now"
    )
    assert await console.ask("/feeds poll 1") == "Feed #1 will be fetched within a few seconds."

    assert await console.ask("/addfeed ftp://org.example/feed") == (
        "'ftp://org.example/feed' is not a feed address: it must start with http:// or https://."
    )
    assert (await console.ask(f"/addfeed {url}x colour:red")).startswith(
        "I don't understand 'colour:red'."
    )
    assert await console.ask(f"/addfeed {url}x tag:12") == (
        "'12' is not a hashtag: use letters, digits and _ (like USdrones)."
    )
    page = feed_server.url("/page")
    assert await console.ask(f"/addfeed {page}") == (
        f"I can't use {page} as a feed: not an RSS or Atom feed (a web page?). Nothing was added."
    )
    gone = feed_server.feed_url("gone")
    assert await console.ask(f"/addfeed {gone} nohistory") == (
        f"I can't use {gone} as a feed: HTTP 404 Not Found. Nothing was added."
    )
    assert len(await store.feeds.all()) == 1

    assert (await visitor.ask("/feeds")).startswith("Only the bot's admins may use /feeds.")
    assert await console.ask("/delfeed 7") == "There is no feed #7. /feeds lists them."
    assert await console.ask("/delfeed x") == "Usage: /delfeed <id>"
    assert await console.ask("/delfeed 1") == (
        f"Feed #1 ({url}) is no longer polled; its statements stay in the archive."
    )
    assert await console.ask("/feeds") == "No feed is polled. /addfeed <url> adds one."
    actions = [e.action for e in await store.audit.recent()]
    assert actions[:3] == ["delfeed", "refused:feeds", "addfeed"]


async def test_feeds_shows_counts_and_last_fetch(
    console: ConsoleChat, store: Store, feed_server: FeedServer
) -> None:
    feed_server.set("news", rss([item(1), item(2)]))
    feed = await add_feed(store, feed_server.feed_url("news"), region="Iran")
    p = poller(store)
    try:
        await poll(p, store, feed.id)
    finally:
        await p.close()
    shown = await console.ask("/feeds")
    assert "region Iran · every 15 min · 2 statements, 0 held" in shown
    assert re.search(r"last fetch now: ok · next poll in 1[3-7] min$", shown), shown


# --------------------------------------------------------------------------- command line


async def test_feeds_on_the_command_line(
    tmp_path: Path, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a thread: the CLI runs its own event loop while the site keeps answering."""
    db = str(tmp_path / "bot.db")

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, ["--db", db, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    feed_server.set("news", rss([item(1), item(2)]))
    url = feed_server.feed_url("news")
    code, out, _ = await run(
        "feeds", "add", url, "--tag", "Org", "--region", "Iran", "--no-import-history",
        "--hold", "--interval", "60",
    )  # fmt: skip
    assert code == 0
    assert out == (
        f"{url}: Org statements, 2 entries\n"
        "Feed #1 added. Its current entries will be only noted; new ones held for "
        "`statement-bot feeds release`.\n"
    )
    assert await run("feeds", "add", url) == (
        2, "", "statement-bot feeds: that feed is already polled as #1\n"
    )  # fmt: skip
    code, _, err = await run("feeds", "add", feed_server.url("/page"))
    assert code == 1 and err.endswith(": not an RSS or Atom feed (a web page?)\n")
    code, _, err = await run("feeds", "add", "file:///etc/passwd")
    assert code == 2 and "must start with http:// or https://" in err

    code, out, _ = await run("feeds")
    assert out == (
        f"#1 {url} — Org statements\n"
        "tag #Org · region Iran · held for release · every 60 min · 0 statements, 0 held\n"
        "not fetched yet · next poll now\n\n"
        "1 feeds\n"
    )
    code, out, _ = await run("feeds", "--json")
    (listed,) = json.loads(out)
    assert listed["url"] == url and listed["hold"] is True and listed["import_history"] is False
    assert listed["interval"] == 3600 and listed["errors"] == 0 and listed["last_error"] is None

    # Held entries released from the command line.
    store = await Store.open(db)
    try:
        p = poller(store)
        await poll(p, store, 1)
        feed_server.set("news", rss([item(3), item(1), item(2)]))
        report = await poll(p, store, 1)
        await p.close()
    finally:
        await store.close()
    (held_id,) = report.statement_ids
    code, out, _ = await run("feeds", "held")
    source = "https://org.example/statements/3"
    assert out == f"#{held_id:<6} feed #1    Statement number 3  {source}\n1 held\n"
    assert (await run("feeds", "release", "all"))[:2] == (
        0,
        f"#{held_id} released: 0 deliveries queued\n",
    )
    assert (await run("feeds", "drop", str(held_id)))[0] == 1

    assert (await run("feeds", "del", "1"))[:2] == (
        0, f"Feed #1 ({url}) is no longer polled; its statements stay.\n"
    )  # fmt: skip
    assert (await run("feeds", "del", "1"))[0] == 2


# --------------------------------------------------------------------------- settings


def test_settings_have_environment_twins_and_are_checked() -> None:
    config = load_config(
        env={
            "STATEMENT_BOT_FEEDS_POLL_INTERVAL": "300",
            "STATEMENT_BOT_FEEDS_HOLD": "yes",
            "STATEMENT_BOT_FEEDS_IMPORT_HISTORY": "false",
            "STATEMENT_BOT_INBOX_DIR": "/srv/inbox",
            "STATEMENT_BOT_HTTP_BASE_URL": "https://statements.example.org",
        }
    )
    assert config.feeds.poll_interval == 300.0
    assert config.feeds.hold is True and config.feeds.import_history is False
    assert config.inbox.dir == "/srv/inbox"
    assert config.http.base_url == "https://statements.example.org"
    bad = {
        "STATEMENT_BOT_FEEDS_POLL_INTERVAL": ("5", "feeds.poll_interval: expected at least 60"),
        "STATEMENT_BOT_FEEDS_MAX_BYTES": ("10", "feeds.max_bytes: expected at least 1024"),
        "STATEMENT_BOT_HTTP_BASE_URL": ("example.org", "http.base_url: expected an http(s) URL"),
        "STATEMENT_BOT_HTTP_STATEMENT_LINK": ("https://t.me/x", "http.statement_link: put {id}"),
        "STATEMENT_BOT_INBOX_INTERVAL": ("0", "inbox.interval: expected at least 0.1"),
    }
    for name, (value, message) in bad.items():
        with pytest.raises(ConfigError) as caught:
            load_config(env={name: value})
        assert str(caught.value).startswith(message), (name, str(caught.value))


async def test_an_entry_without_text_is_skipped_until_it_has_some(
    store: Store, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    await subscribe_all(store, 1)
    feed_server.set("news", rss([item(1)]))
    feed = await add_feed(store, feed_server.feed_url("news"))
    p = poller(store)
    try:
        await poll(p, store, feed.id)
        feed_server.set("news", rss([item(2, text=""), item(2, text=""), item(1)]))
        report = await poll(p, store, feed.id)
        assert (report.added, report.skipped) == (0, 2)
        skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
        assert len(skipped) == 1 and "urn:statement:2" in skipped[0].getMessage()
        feed_server.set("news", rss([item(2, text=""), item(1)], extra="<ttl>5</ttl>"))
        report = await poll(p, store, feed.id)
        assert report.skipped == 1
        assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 1  # said once
        feed_server.set("news", rss([item(2), item(1)]))
        report = await poll(p, store, feed.id)
        assert (report.added, report.sent, report.deliveries) == (1, 1, 1)
        (new_id,) = report.statement_ids
        key = await store.feeds.import_key_of(new_id)
        assert key == f"feed:{feed.id}:urn:statement:2"
    finally:
        await p.close()
