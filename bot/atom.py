"""The archive as Atom feeds (RFC 4287), written by feedgen.

Why Atom and feedgen: Atom has ids, update times and typed content, so feed readers
show an edited statement as updated rather than new; feedgen writes it correctly
(escaping, dates, namespaces) so this module only decides what goes where.

Ids are `tag:` URIs (RFC 4151) built from the public host name and the statement's
slug: stable for as long as the address is, and never reused for another statement.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from feedgen.feed import FeedGenerator

from bot.model import Statement

LATEST = 50  # entries per feed
TAG_DATE = "2024"  # the date part of every tag: URI; never change it (ids would change)
GENERATOR = "statement-bot"
CONTENT_TYPE = "application/atom+xml; charset=utf-8"


@dataclass(frozen=True, slots=True)
class AtomSite:
    """Where the feeds live and what they say about themselves."""

    base_url: str  # "https://statements.example.org", no trailing slash
    title: str = "Statements"
    author: str = "statement-bot"
    statement_link: str = ""  # "https://t.me/examplebot?start=s_{id}"

    @property
    def authority(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    def tag_uri(self, specific: str) -> str:
        return f"tag:{self.authority},{TAG_DATE}:{specific}"

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def feed_path(kind: str, name: str = "") -> str:
    """`/feed.atom`, `/tag/<t>.atom`, `/region/<r>.atom` (the name percent-encoded)."""
    if kind == "all":
        return "/feed.atom"
    return f"/{kind}/{quote(name, safe='')}.atom"


def statement_html(st: Statement) -> str:
    """Paragraphs as escaped HTML; line breaks inside a paragraph as <br/>."""
    return "".join(
        "<p>" + "<br/>".join(html.escape(line) for line in p.split("\n")) + "</p>"
        for p in st.paragraphs
    )


def statement_link(site: AtomSite, st: Statement) -> str | None:
    """The entry's alternate link: the statement's source, else the configured deep link."""
    if st.source:
        return st.source
    if site.statement_link and st.id is not None:
        return site.statement_link.format(id=st.id, slug=st.slug)
    return None


def build_feed(
    site: AtomSite,
    statements: Sequence[Statement],
    *,
    path: str,
    title: str,
    times: Mapping[int, tuple[datetime, datetime]] | None = None,
    now: datetime | None = None,
) -> bytes:
    """One Atom document. `times` gives id → (created, updated) from the store: an entry
    is "updated" when it was edited after it was stored, else when it was published."""
    times = times or {}
    fg = FeedGenerator()
    fg.id(site.tag_uri(path))
    fg.title(title)
    fg.author({"name": site.author})
    fg.link(href=site.url(path), rel="self", type="application/atom+xml")
    fg.generator(GENERATOR)
    newest: datetime | None = None
    for st in statements:
        published = st.published_at or datetime.now(UTC)
        updated = published
        created_edited = times.get(st.id) if st.id is not None else None
        if created_edited is not None and created_edited[1] > created_edited[0]:
            updated = max(published, created_edited[1])
        newest = updated if newest is None else max(newest, updated)
        fe = fg.add_entry(order="append")
        fe.id(site.tag_uri(f"statement/{st.slug or st.id}"))
        fe.title(st.title)
        fe.published(published)
        fe.updated(updated)
        fe.author({"name": site.author})
        link = statement_link(site, st)
        if link:
            fe.link(href=link, rel="alternate")
        for tag in st.tags:
            fe.category(term=tag, scheme=site.url("/tag/"), label=f"#{tag}")
        for region in st.regions:
            fe.category(term=region, scheme=site.url("/region/"), label=region)
        fe.content(statement_html(st), type="html")
    fg.updated(newest or now or datetime.now(UTC))
    return bytes(fg.atom_str(pretty=True))
