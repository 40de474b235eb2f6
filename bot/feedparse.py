"""A fetched RSS / Atom document → feed entries → Statements.

Why the rules of `bot.statements` and not new ones: a statement from the website must
look exactly like the same statement imported from a file — `IRAN - Title` headlines
give regions, hashtags (in the text or a closing hashtag line) give tags — so matching
and subscriptions treat both alike. HTML goes through a real sanitiser (nh3, the
ammonia library) before it becomes text: feed HTML is third-party markup.
"""

from __future__ import annotations

import calendar
import html
import re
import xml.sax
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import feedparser
import nh3

from bot import texts
from bot.model import Statement
from bot.statements import (
    MAX_TITLE_LENGTH,
    StatementError,
    _hashtags,
    _headline,
    _tag_line,
    content_hash,
    display_region,
    language_code,
    slugify,
)

# Block elements become paragraph breaks, <br> a line break; every other tag is dropped
# (its text kept). nh3 leaves exactly these tags, attribute-free, for the two regexes below.
_BLOCK_TAGS = frozenset(
    {"p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}
    | {"tr", "table", "section", "article", "figure", "figcaption", "hr", "dd", "dt"}
)
_BLOCK = re.compile(r"</?(?:" + "|".join(sorted(_BLOCK_TAGS, key=len, reverse=True)) + r")\s*/?>")
_BR = re.compile(r"<br\s*/?>")
_TAG_START = re.compile(r"<[A-Za-z/!?]")
_WHITESPACE = re.compile(r"\s+")
_LINE_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"[^\W_]+")
# Categories every blog engine adds and nobody means as a topic.
_NO_TOPIC = frozenset({"uncategorized", "uncategorised", "general", "news", "allgemein"})
FALLBACK_TITLE_LENGTH = 100
MAX_TAG_LENGTH = 50


class FeedFormatError(Exception):
    """The document is not a feed we can read; the message is for /feeds."""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    language: str | None
    entries: list[Any]  # feedparser's entry dicts


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry as a statement, with the identities it is deduplicated by."""

    guid: str | None
    link: str | None
    statement: Statement
    text_hash: str  # title, text, tags and regions: the same words under a new guid
    dated: bool  # the feed gave the publication time (else it is when we first saw it)

    @property
    def identity(self) -> str:
        """What the import key is made of: guid, else link, else the text."""
        return self.guid or self.link or f"sha256:{self.text_hash}"


def parse_feed(data: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a document; FeedFormatError when it is no feed or not well-formed.

    Not well-formed XML is refused even when feedparser's loose parser recovers some
    entries: a truncated download would otherwise publish truncated statements.
    """
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    doc = feedparser.parse(data, response_headers=headers, sanitize_html=False)
    if not doc.get("version"):
        raise FeedFormatError(texts.FEED_NOT_A_FEED)
    problem = doc.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXParseException):
        raise FeedFormatError(
            texts.FEED_NOT_WELL_FORMED.format(
                line=problem.getLineNumber(), reason=problem.getMessage()
            )
        )
    if isinstance(problem, xml.sax.SAXException):
        raise FeedFormatError(texts.FEED_NOT_WELL_FORMED_AT.format(reason=problem.getMessage()))
    feed = doc.get("feed", {})
    language = feed.get("language")
    language = language_code(language.strip()) if isinstance(language, str) else None
    return ParsedFeed(_plain(feed.get("title_detail")), language, list(doc.get("entries", [])))


# --------------------------------------------------------------------------- HTML → text


def html_paragraphs(markup: str) -> list[str]:
    """Sanitised text of an HTML fragment: paragraphs from blocks, lines from <br>.

    Text without a single tag is taken as plain text whose blank lines separate
    paragraphs: RSS calls every description HTML, and many are typed-in text.
    """
    if not _TAG_START.search(markup):
        return text_paragraphs(html.unescape(markup))
    cleaned = nh3.clean(markup, tags=set(_BLOCK_TAGS | {"br"}), attributes={}, link_rel=None)
    cleaned = _WHITESPACE.sub(" ", cleaned)  # source line breaks are only spaces in HTML
    cleaned = _BR.sub("\n", cleaned)
    cleaned = _BLOCK.sub("\n\n", cleaned)
    return _split_paragraphs(html.unescape(cleaned))


def text_paragraphs(text: str) -> list[str]:
    """Plain text: blank lines separate paragraphs."""
    return _split_paragraphs(text.replace("\r\n", "\n").replace("\r", "\n"))


def _split_paragraphs(text: str) -> list[str]:
    out = []
    for block in _PARAGRAPH_BREAK.split(text):
        lines = [_LINE_SPACE.sub(" ", line).strip() for line in block.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined:
            out.append(joined)
    return out


def _plain(detail: Any) -> str:
    """A title-like text construct as one line of plain text."""
    if not detail:
        return ""
    value = str(detail.get("value") or "")
    if "html" in str(detail.get("type") or ""):
        value = " ".join(html_paragraphs(value))
    return _LINE_SPACE.sub(" ", _WHITESPACE.sub(" ", value)).strip()


def _body(entry: Any) -> list[str]:
    """The fullest text of an entry: its content, else its summary."""
    candidates = [*entry.get("content", []), entry.get("summary_detail")]
    for detail in candidates:
        if not detail or not str(detail.get("value") or "").strip():
            continue
        value = str(detail["value"])
        kind = str(detail.get("type") or "text/html")
        paragraphs = html_paragraphs(value) if "html" in kind else text_paragraphs(value)
        if paragraphs:
            return paragraphs
    return []


# --------------------------------------------------------------------------- entry → statement


def category_tag(term: str) -> str | None:
    """`Middle East` → `MiddleEast`, `imperialism` → `imperialism`; None for URLs, numbers,
    blog-engine defaults and anything too long to be a hashtag."""
    term = term.strip().lstrip("#")
    if not term or "://" in term or term.casefold() in _NO_TOPIC:
        return None
    words = _WORD.findall(term)
    if not words or not any(c.isalpha() for w in words for c in w):
        return None
    tag = words[0] if len(words) == 1 else "".join(w[:1].upper() + w[1:] for w in words)
    return tag if len(tag) <= MAX_TAG_LENGTH else None


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:-")
    return (cut or text[: limit - 1]) + "…"


def _entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return None


def _dedupe(items: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item.casefold() not in seen:
            seen.add(item.casefold())
            out.append(item)
    return tuple(out)


def entry_statement(
    entry: Any,
    *,
    tag: str = "",
    region: str = "",
    language: str | None = None,
    first_seen: datetime | None = None,
) -> FeedEntry:
    """One feedparser entry as a statement; StatementError when it has no text.

    `tag` / `region` are the feed's defaults, added to what the entry says. `first_seen`
    stands in for a missing date and, as with a file's mtime, is not part of the hash,
    so an undated entry is not "edited" every time it is fetched.
    """
    guid = str(entry.get("id") or "").strip() or None
    link = str(entry.get("link") or "").strip() or None
    label = guid or link or "entry"
    paragraphs = _body(entry)
    line_tags: list[str] = []
    if paragraphs and (found := _tag_line(paragraphs[-1])) is not None:
        line_tags = found
        paragraphs.pop()
    raw_title = _plain(entry.get("title_detail")) or _plain({"value": entry.get("title", "")})
    if not raw_title and paragraphs:
        raw_title = _shorten(paragraphs[0].replace("\n", " "), FALLBACK_TITLE_LENGTH)
    regions, title = _headline(raw_title)
    title = _shorten(title, MAX_TITLE_LENGTH)
    if not title:
        raise StatementError(label, None, texts.FEED_ENTRY_EMPTY)
    if not paragraphs:
        raise StatementError(label, None, texts.FEED_ENTRY_NO_TEXT)

    categories = [
        category_tag(str(t.get("label") or t.get("term") or "")) for t in entry.get("tags", [])
    ]
    tags = _dedupe(
        [
            *([tag.lstrip("#")] if tag else []),
            *(c for c in categories if c),
            *line_tags,
            *_hashtags(title),
            *(t for p in paragraphs for t in _hashtags(p)),
        ]
    )
    all_regions = _dedupe([*regions, *([display_region(region)] if region else [])])
    published = _entry_time(entry)
    st = Statement(
        title=title,
        paragraphs=tuple(paragraphs),
        regions=all_regions,
        tags=tags,
        published_at=published or first_seen or datetime.now(UTC),
        source=link if link and link.startswith(("http://", "https://")) else None,
        language=language,
    )
    digest = content_hash(st, include_published_at=published is not None)
    text_hash = content_hash(replace(st, source=None, published_at=None))
    slug = slugify(title) or f"statement-{digest[:12]}"
    return FeedEntry(
        guid=guid,
        link=link,
        statement=replace(st, slug=slug, content_hash=digest),
        text_hash=text_hash,
        dated=published is not None,
    )
