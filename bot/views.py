"""How statements look in a chat, as neutral Replies: one place for handlers and the
broadcaster, so a subscriber sees exactly what /show shows."""

from __future__ import annotations

from collections.abc import Iterable

from bot import texts
from bot.model import Button, Paragraph, Reply, Span, Statement, Style

CARD_EXCERPT = 280


def text(*parts: str | Span) -> Paragraph:
    """A paragraph from plain strings and spans."""
    return Paragraph(tuple(p if isinstance(p, Span) else Span(p) for p in parts))


def lines(*rows: Paragraph | str) -> Paragraph:
    """Several lines in one paragraph (a list, not a wall of blank lines)."""
    spans: list[Span] = []
    for i, row in enumerate(rows):
        if i:
            spans.append(Span("\n"))
        spans.extend(row.spans if isinstance(row, Paragraph) else (Span(row),))
    return Paragraph(tuple(spans))


def bold(value: str) -> Span:
    return Span(value, Style.BOLD)


def italic(value: str) -> Span:
    return Span(value, Style.ITALIC)


def code(value: str) -> Span:
    return Span(value, Style.CODE)


def reply(*paragraphs: Paragraph | str, buttons: Iterable[Iterable[Button]] = ()) -> Reply:
    return Reply(
        tuple(p if isinstance(p, Paragraph) else text(p) for p in paragraphs),
        tuple(tuple(row) for row in buttons),
    )


def meta_line(st: Statement) -> Paragraph:
    """Region · date · #tags"""
    spans: list[Span] = []
    if st.regions:
        spans.append(Span(" / ".join(st.regions), Style.BOLD))
    if st.published_at:
        if spans:
            spans.append(Span(" · "))
        spans.append(Span(st.published_at.strftime("%d %b %Y")))
    if st.tags:
        if spans:
            spans.append(Span(" · "))
        spans.append(Span(" ".join(f"#{t}" for t in st.tags), Style.ITALIC))
    return Paragraph(tuple(spans))


def headline(st: Statement) -> Paragraph:
    spans = [Span(st.title, Style.BOLD)]
    if st.id is not None:
        spans.insert(0, Span(f"#{st.id} ", Style.CODE))
    return Paragraph(tuple(spans))


def excerpt(st: Statement, limit: int = CARD_EXCERPT) -> str:
    first = st.paragraphs[0] if st.paragraphs else ""
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def card(st: Statement, prefix: str) -> list[Paragraph]:
    """A statement in a list: headline, meta, excerpt, how to read it all."""
    return [
        headline(st),
        meta_line(st),
        text(excerpt(st)),
        text(italic(texts.READ_MORE.format(p=prefix, id=st.id))),
    ]


def full(st: Statement) -> Reply:
    """A statement as subscribers receive it and /show displays it."""
    paragraphs = [Paragraph((Span(st.title, Style.BOLD),)), meta_line(st)]
    paragraphs.extend(text(p) for p in st.paragraphs)
    if st.source:
        paragraphs.append(Paragraph((Span(texts.SOURCE, Style.BOLD, link=st.source),)))
    return Reply(tuple(p for p in paragraphs if p.spans), preview_url=st.source)


def announcement(body: str) -> Reply:
    paragraphs = [Paragraph((Span(texts.ANNOUNCEMENT_HEADER, Style.BOLD),))]
    paragraphs.extend(text(p.strip()) for p in body.split("\n\n") if p.strip())
    return Reply(tuple(paragraphs))
