"""Reply → what a platform can send: plain text, or HTML with every piece of text escaped.

Splitting happens on the neutral model, before rendering, so a split never lands inside
a tag: first between paragraphs, then between words of an over-long paragraph, and only
inside a word if a single word is longer than the limit.
"""

from __future__ import annotations

import html
import re

from bot.model import Button, Paragraph, Reply, Span, Style

TELEGRAM_LIMIT = 4096
MATRIX_LIMIT = 16000  # well under the 64 KiB event limit, readable in one screen or two


def _span_html(span: Span) -> str:
    out = html.escape(span.text, quote=False)
    if Style.CODE in span.style:
        out = f"<code>{out}</code>"
    if Style.ITALIC in span.style:
        out = f"<i>{out}</i>"
    if Style.BOLD in span.style:
        out = f"<b>{out}</b>"
    if span.link:
        out = f'<a href="{html.escape(span.link, quote=True)}">{out}</a>'
    return out


def paragraph_html(paragraph: Paragraph) -> str:
    return "".join(_span_html(s) for s in paragraph.spans)


def to_html(reply: Reply, *, separator: str = "\n\n") -> str:
    """Telegram HTML: paragraphs separated by blank lines (Telegram keeps newlines)."""
    return separator.join(paragraph_html(p) for p in reply.paragraphs)


def to_matrix_html(reply: Reply) -> str:
    """Matrix `formatted_body`: one <p> per paragraph; line breaks become <br>."""
    return "".join(
        "<p>" + paragraph_html(p).replace("\n", "<br>") + "</p>" for p in reply.paragraphs
    )


def _span_text(span: Span) -> str:
    if span.link and span.link != span.text:
        return f"{span.text} ({span.link})"
    return span.text


def to_text(reply: Reply, *, prefix: str = "/", with_buttons: bool = True) -> str:
    """Plain text for the console and Matrix `body`; buttons become command hints."""
    out = "\n\n".join("".join(_span_text(s) for s in p.spans) for p in reply.paragraphs)
    if with_buttons and reply.buttons:
        out += "\n\n" + buttons_text(reply.buttons, prefix)
    return out


def buttons_text(rows: tuple[tuple[Button, ...], ...], prefix: str) -> str:
    return "\n".join("   ".join(f"[{b.label}: {prefix}{b.command}]" for b in row) for row in rows)


def split(reply: Reply, limit: int) -> list[Reply]:
    """Cut a reply into parts whose text is at most `limit` characters.

    Buttons go with the last part, the link preview with the first. An over-long
    paragraph starts in the room left in the current part (when that room is worth
    using), so a headline is not sent as a message of its own.
    """
    parts: list[list[Paragraph]] = [[]]
    size = 0
    for paragraph in reply.paragraphs:
        if len(paragraph.plain) <= limit:
            pieces = [paragraph]
        else:
            room = limit - size - 2 if parts[-1] else limit
            pieces = _split_paragraph(paragraph, limit, room if room >= limit // 4 else limit)
        for piece in pieces:
            length = len(piece.plain)
            extra = length + (2 if parts[-1] else 0)
            if parts[-1] and size + extra > limit:
                parts.append([])
                size = 0
                extra = length
            parts[-1].append(piece)
            size += extra
    replies = [Reply(tuple(p)) for p in parts if p]
    if not replies:
        return [reply]
    replies[0] = Reply(replies[0].paragraphs, (), reply.preview_url)
    replies[-1] = Reply(replies[-1].paragraphs, reply.buttons, replies[-1].preview_url)
    return replies


_TOKEN = re.compile(r"\S+\s*|\s+")


def _split_paragraph(paragraph: Paragraph, limit: int, first: int = 0) -> list[Paragraph]:
    """Word-wise split of one long paragraph, keeping each word's style.

    The first piece holds at most `first` characters (the room left in the current
    part; 0 means a whole part); a word that does not fit there moves on whole.
    """
    out: list[Paragraph] = []
    current: list[Span] = []
    size = 0
    cap = first or limit
    for span in paragraph.spans:
        for token in _TOKEN.findall(span.text):
            word = len(token.rstrip())
            if size + word > cap and (current or word <= limit):
                if current:
                    out.append(Paragraph(tuple(current)))
                current, size, cap = [], 0, limit
                token = token.lstrip()
            while len(token.rstrip()) > cap:  # one enormous "word": hard cut is all that is left
                out.append(Paragraph((Span(token[:cap], span.style, span.link),)))
                token = token[cap:]
                cap = limit
            if not token:
                continue
            if current and current[-1].style == span.style and current[-1].link == span.link:
                current[-1] = Span(current[-1].text + token, span.style, span.link)
            else:
                current.append(Span(token, span.style, span.link))
            size += len(token)
    if current:
        out.append(Paragraph(tuple(current)))
    return [p for p in (_rstrip(p) for p in out) if p.spans]


def _rstrip(paragraph: Paragraph) -> Paragraph:
    spans = list(paragraph.spans)
    if spans:
        last = spans[-1]
        spans[-1] = Span(last.text.rstrip(), last.style, last.link)
    return Paragraph(tuple(s for s in spans if s.text))
