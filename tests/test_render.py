"""Rendering the neutral Reply: escaped HTML, plain text with command hints, and splits
that land between paragraphs, then between words, never inside a word that fits."""

from __future__ import annotations

import itertools
import random

from bot.model import Button, Paragraph, Reply, Span, Statement, Style
from bot.render import TELEGRAM_LIMIT, split, to_html, to_matrix_html, to_text
from bot.views import full

WORDS = ("solidarity", "workers", "of", "the", "world", "unite", "against", "war", "and", "now")


def prose(length: int, rng: random.Random) -> str:
    """Whole words separated by single spaces, `length` characters or a word more."""
    out = ""
    while len(out) < length:
        out += ("" if not out else " ") + rng.choice(WORDS)
    return out


def para(*spans: Span | str) -> Paragraph:
    return Paragraph(tuple(s if isinstance(s, Span) else Span(s) for s in spans))


def test_html_escapes_every_text() -> None:
    reply = Reply(
        (
            para("<script>alert('x')</script> & more"),
            para(Span("a<b", Style.BOLD), Span(" & ", Style.ITALIC), Span("x>y", Style.CODE)),
            para(Span('say "hi" & <go>', link='https://e.org/?a=1&b="2"')),
        )
    )
    assert to_html(reply) == (
        "&lt;script&gt;alert('x')&lt;/script&gt; &amp; more\n\n"
        "<b>a&lt;b</b><i> &amp; </i><code>x&gt;y</code>\n\n"
        '<a href="https://e.org/?a=1&amp;b=&quot;2&quot;">say "hi" &amp; &lt;go&gt;</a>'
    )


def test_html_nests_styles() -> None:
    span = Span("x", Style.BOLD | Style.ITALIC | Style.CODE, link="https://e.org")
    assert to_html(Reply((para(span),))) == (
        '<a href="https://e.org"><b><i><code>x</code></i></b></a>'
    )


def test_matrix_html_paragraphs_and_breaks() -> None:
    reply = Reply((para("one\ntwo"), para(Span("<b>", Style.BOLD))))
    assert to_matrix_html(reply) == "<p>one<br>two</p><p><b>&lt;b&gt;</b></p>"


def test_plain_text_links_and_buttons() -> None:
    reply = Reply(
        (
            para("Hello"),
            para(Span("Source", link="https://e.org/s")),
            para(Span("https://x.y", link="https://x.y")),
        ),
        buttons=((Button("Read #1", "show 1"), Button("Next ▶", "latest page 2")),),
    )
    assert to_text(reply) == (
        "Hello\n\nSource (https://e.org/s)\n\nhttps://x.y\n\n"
        "[Read #1: /show 1]   [Next ▶: /latest page 2]"
    )
    assert to_text(reply, prefix="!").endswith("[Next ▶: !latest page 2]")
    assert "[" not in to_text(reply, with_buttons=False)


def test_short_reply_is_one_part() -> None:
    reply = Reply((para("short"),), buttons=((Button("b", "c"),),), preview_url="https://e.org")
    assert split(reply, TELEGRAM_LIMIT) == [reply]


def test_long_statement_splits_between_paragraphs() -> None:
    rng = random.Random(1)
    paragraphs = tuple(prose(rng.randint(300, 1200), rng) for _ in range(18))
    st = Statement(title="Title", paragraphs=paragraphs, source="https://e.org/s")
    reply = Reply(
        full(st).paragraphs,
        buttons=((Button("Read", "show 1"),),),
        preview_url="https://e.org/s",
    )
    assert 10_000 < len(reply.plain) < 20_000
    parts = split(reply, TELEGRAM_LIMIT)
    assert len(parts) >= 3
    assert all(len(p.plain) <= TELEGRAM_LIMIT for p in parts)
    # Every paragraph whole and in order: nothing cut, nothing lost.
    assert [q for p in parts for q in p.paragraphs] == list(reply.paragraphs)
    # Each part is as full as it can be: the next paragraph would not have fitted.
    for part, following in itertools.pairwise(parts):
        assert len(part.plain) + 2 + len(following.paragraphs[0].plain) > TELEGRAM_LIMIT
    assert [p.buttons for p in parts] == [()] * (len(parts) - 1) + [reply.buttons]
    assert [p.preview_url for p in parts] == ["https://e.org/s"] + [None] * (len(parts) - 1)


def test_long_paragraph_splits_between_words() -> None:
    text = prose(6000, random.Random(2))
    reply = Reply((para("Heading"), para(text)), buttons=((Button("x", "y"),),))
    parts = split(reply, TELEGRAM_LIMIT)
    assert len(parts) == 2
    assert all(len(p.plain) <= TELEGRAM_LIMIT for p in parts)
    pieces = [q.plain for p in parts for q in p.paragraphs]
    assert pieces[0] == "Heading"
    body = pieces[1:]
    assert " ".join(body) == text  # cut only at a space, which is dropped
    for piece in body:
        assert piece == piece.strip()
        assert set(piece.split()) <= set(WORDS)  # every word whole
    assert parts[-1].buttons == reply.buttons and parts[0].buttons == ()


def test_long_paragraph_starts_in_the_room_left() -> None:
    """A headline is not sent alone when the paragraph after it is over-long."""
    text = prose(5000, random.Random(3))
    parts = split(Reply((para("Heading"), para("Meta line"), para(text))), TELEGRAM_LIMIT)
    assert [len(p.paragraphs) for p in parts] == [3, 1]
    assert len(parts[0].plain) > TELEGRAM_LIMIT - 20
    # Too little room left (under a quarter of the limit): the paragraph starts a new part.
    parts = split(Reply((para(prose(3500, random.Random(4))), para(text))), TELEGRAM_LIMIT)
    assert [len(p.paragraphs) for p in parts] == [1, 1, 1]
    assert all(len(p.plain) <= TELEGRAM_LIMIT for p in parts)


def test_word_that_does_not_fit_the_room_moves_on_whole() -> None:
    long_word = "b" * 300
    text = long_word + " " + prose(600, random.Random(5))
    parts = split(Reply((para("x" * 700), para(text))), 1000)
    pieces = [q.plain for p in parts for q in p.paragraphs]
    assert pieces[0] == "x" * 700
    assert pieces[1].startswith(long_word)  # not cut to fill the 298 characters left
    assert all(len(p.plain) <= 1000 for p in parts)


def test_word_split_keeps_styles() -> None:
    bold = " ".join(["bold"] * 30)
    plain = " ".join(["plain"] * 30)
    reply = Reply((para(Span(bold, Style.BOLD), Span(" " + plain)),))
    parts = split(reply, 60)
    assert all(len(p.plain) <= 60 for p in parts)
    spans = [s for p in parts for q in p.paragraphs for s in q.spans]
    assert all(s.style is Style.BOLD for s in spans if "bold" in s.text)
    assert all(s.style is Style.NONE for s in spans if "plain" in s.text)
    assert " ".join(q.plain for p in parts for q in p.paragraphs) == bold + " " + plain


def test_word_longer_than_limit_is_cut() -> None:
    word = "a" * 10_000
    reply = Reply((para(f"before {word} after"),))
    parts = split(reply, TELEGRAM_LIMIT)
    texts = [q.plain for p in parts for q in p.paragraphs]
    assert all(len(p.plain) <= TELEGRAM_LIMIT for p in parts)
    assert "".join(texts).replace(" ", "") == f"before{word}after"
    assert texts[0] == "before"  # the short word is not glued to a piece of the long one
    assert texts[-1].endswith("after")
    assert [len(t) for t in texts[1:3]] == [TELEGRAM_LIMIT, TELEGRAM_LIMIT]


def test_matrix_and_console_limits_fit_a_long_statement() -> None:
    st = Statement(title="T", paragraphs=tuple("word " * 200 for _ in range(10)))
    parts = split(full(st), 16000)
    assert len(parts) == 1
