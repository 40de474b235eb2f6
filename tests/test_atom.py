"""The Atom feeds of the archive: built by feedgen, read back with feedparser field by
field, and served by the HTTP endpoint (with 404s for unknown tags and regions, and 304s)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import aiohttp
import feedparser
import pytest
import pytest_asyncio

from bot.atom import AtomSite, build_feed, statement_html
from bot.config import Config, HttpConfig
from bot.http import HttpEndpoint
from bot.statements import parse_statement
from bot.store import Store

pytestmark = pytest.mark.timeout(30)

BASE = "https://statements.example.org"

FIRST = """---
title: Down with US drones
regions: [Iran]
tags: [Iran, USdrones]
published: 2024-03-01T10:00:00Z
source: https://org.example/statements/drones
language: en
---
The drones <must> go & stay gone.

A second paragraph
with a line break.
"""

SECOND = """USA / MEXICO - No wall, no borders

Solidarity across the border.

#NoWall #Solidarity
"""


async def fill(store: Store) -> tuple[int, int]:
    one = await store.statements.add(parse_statement(FIRST, path="drones.md"), import_key="a")
    two = await store.statements.add(
        parse_statement(SECOND, default_published_at=datetime(2024, 3, 2, 9, 30, tzinfo=UTC)),
        import_key="b",
    )
    assert one.statement.id is not None and two.statement.id is not None
    return one.statement.id, two.statement.id


def test_statement_html_escapes_and_keeps_lines() -> None:
    st = parse_statement(FIRST, path="x.md")
    assert statement_html(st) == (
        "<p>The drones &lt;must&gt; go &amp; stay gone.</p>"
        "<p>A second paragraph<br/>with a line break.</p>"
    )


async def test_feed_parses_back_with_every_field(store: Store) -> None:
    one, two = await fill(store)
    # An edit after it was stored: the entry is "updated" at the edit, published as before.
    await store.db.execute(
        "UPDATE statements SET created_at = 1700000000, updated_at = 1720000000 WHERE id = ?",
        (one,),
    )
    items = await store.statements.latest(50)
    times = await store.feeds.statement_times([s.id for s in items if s.id])
    site = AtomSite(BASE, title="Org statements", author="The Org",
                    statement_link="https://t.me/examplebot?start=s_{id}")  # fmt: skip
    body = build_feed(site, items, path="/feed.atom", title="Org statements", times=times)
    doc = feedparser.parse(body)
    assert not doc.bozo, doc.get("bozo_exception")
    assert doc.version == "atom10"
    feed = doc.feed
    assert feed.id == "tag:statements.example.org,2024:/feed.atom"
    assert feed.title == "Org statements"
    assert feed.author == "The Org"
    assert [(link.rel, link.href) for link in feed.links] == [("self", f"{BASE}/feed.atom")]
    assert feed.updated_parsed[:6] == (2024, 7, 3, 9, 46, 40)  # the edit is the newest change

    second, first = doc.entries  # newest first
    assert second.id == "tag:statements.example.org,2024:statement/no-wall-no-borders"
    assert second.title == "No wall, no borders"
    assert second.published_parsed[:6] == (2024, 3, 2, 9, 30, 0)
    assert second.updated_parsed[:6] == (2024, 3, 2, 9, 30, 0)
    assert second.author == "The Org"
    assert second.link == f"https://t.me/examplebot?start=s_{two}"  # no source: the deep link
    assert [(t.term, t.scheme, t.label) for t in second.tags] == [
        ("NoWall", f"{BASE}/tag/", "#NoWall"),
        ("Solidarity", f"{BASE}/tag/", "#Solidarity"),
        ("USA", f"{BASE}/region/", "USA"),
        ("Mexico", f"{BASE}/region/", "Mexico"),
    ]
    assert second.content[0].type == "text/html"
    assert second.content[0].value == "<p>Solidarity across the border.</p>"

    assert first.id == "tag:statements.example.org,2024:statement/down-with-us-drones"
    assert first.title == "Down with US drones"
    assert first.link == "https://org.example/statements/drones"
    assert first.published_parsed[:6] == (2024, 3, 1, 10, 0, 0)
    assert first.updated_parsed[:6] == (2024, 7, 3, 9, 46, 40)
    assert [t.term for t in first.tags] == ["Iran", "USdrones", "Iran"]
    assert first.content[0].value == (
        "<p>The drones &lt;must&gt; go &amp; stay gone.</p>"
        "<p>A second paragraph<br />with a line break.</p>"
    )


def test_empty_feed_is_valid() -> None:
    doc = feedparser.parse(build_feed(AtomSite(BASE), [], path="/feed.atom", title="Nothing"))
    assert not doc.bozo and doc.version == "atom10" and doc.entries == []
    assert doc.feed.title == "Nothing"


def test_entry_without_source_or_deep_link_has_no_link() -> None:
    st = replace(parse_statement(SECOND), id=3, published_at=datetime(2024, 1, 1, tzinfo=UTC))
    doc = feedparser.parse(build_feed(AtomSite(BASE), [st], path="/feed.atom", title="T"))
    assert doc.entries[0].get("links", []) == []  # (feedparser makes `link` of the id)
    assert doc.entries[0].content[0].value.startswith("<p>Solidarity")


# --------------------------------------------------------------------------- over HTTP


@pytest_asyncio.fixture
async def endpoint(store: Store) -> AsyncIterator[HttpEndpoint]:
    config = Config(http=HttpConfig(listen="127.0.0.1:0", feed_title="Org statements"))
    service = SimpleNamespace(config=config, store=store, platforms={}, broadcaster=None)
    http = HttpEndpoint(service, config.http.listen)  # type: ignore[arg-type]
    await http.start()
    try:
        yield http
    finally:
        await http.stop()


async def test_served_feeds(store: Store, endpoint: HttpEndpoint) -> None:
    await fill(store)
    base = f"http://127.0.0.1:{endpoint.port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/feed.atom") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
            etag = resp.headers["ETag"]
            doc = feedparser.parse(await resp.read())
        assert doc.feed.title == "Org statements"
        assert [e.title for e in doc.entries] == ["No wall, no borders", "Down with US drones"]
        # Without base_url the links are the request's own address.
        assert doc.feed.links[0].href == f"{base}/feed.atom"
        assert doc.feed.id == "tag:127.0.0.1,2024:/feed.atom"

        async with session.get(f"{base}/feed.atom", headers={"If-None-Match": etag}) as resp:
            assert resp.status == 304

        async with session.get(f"{base}/tag/usdrones.atom") as resp:
            assert resp.status == 200
            doc = feedparser.parse(await resp.read())
        assert doc.feed.title == "Org statements: #USdrones"
        assert doc.feed.links[0].href == f"{base}/tag/USdrones.atom"
        assert [e.title for e in doc.entries] == ["Down with US drones"]

        for path in ("/region/mexico.atom", "/region/MX.atom", "/region/Mexico.atom"):
            async with session.get(base + path) as resp:
                assert resp.status == 200, path
                doc = feedparser.parse(await resp.read())
            assert doc.feed.title == "Org statements: Mexico"
            assert [e.title for e in doc.entries] == ["No wall, no borders"]

        for path in ("/tag/nothing.atom", "/region/Atlantis.atom", "/region/south_africa.atom"):
            async with session.get(base + path) as resp:
                assert resp.status == 404, path
        async with session.get(f"{base}/healthz") as resp:
            assert resp.status == 503  # no platforms and no broadcaster here: still answers


async def test_latest_fifty_only(store: Store, endpoint: HttpEndpoint) -> None:
    first = datetime(2024, 1, 1, tzinfo=UTC)
    texts = [(f"Statement {n}\n\nText {n}.", first + timedelta(hours=n)) for n in range(60)]
    items = [
        (parse_statement(text, default_published_at=at), f"k{n}")
        for n, (text, at) in enumerate(texts)
    ]
    await store.statements.add_many(items)
    url = f"http://127.0.0.1:{endpoint.port}/feed.atom"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        doc = feedparser.parse(await resp.read())
    assert len(doc.entries) == 50
    assert doc.entries[0].title == "Statement 59" and doc.entries[-1].title == "Statement 10"
