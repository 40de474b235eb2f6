"""Subscribing a chat: subscribe, unsubscribe, subscriptions.

Who may change a chat's subscriptions: anyone in a private chat; in a group or room the
chat's admins (the platform says who) or the bot's admins. A Telegram channel is named
from a private chat (`/subscribe @channel`) and the platform checks the rights.
"""

from __future__ import annotations

import logging

from bot import texts
from bot.model import Chat, ChatKind, Command, Filter, FilterKind, Reply, Subscription
from bot.views import bold, lines, reply, text
from handlers import UsageError, command, usage_error
from handlers.browse import find_region, find_tag
from handlers.context import Context

log = logging.getLogger(__name__)


def describe(flt: Filter, display: str) -> str:
    if flt.kind is FilterKind.ALL:
        return texts.WHAT_ALL
    if flt.kind is FilterKind.TAG:
        return texts.WHAT_TAG.format(name=display)
    return texts.WHAT_REGION.format(name=display)


async def parse_filter(ctx: Context, words: list[str], name: str) -> tuple[Filter, str] | None:
    """`[]`/`all` → all; `tag X`, `tag:X`, `#X` → tag; `region X`, `region:X` → region.

    Returns None for "no filter given" (meaning all, or every subscription for unsubscribe).
    """
    if not words:
        return None
    first = words[0].lower()
    if first == "all" and len(words) == 1:
        return Filter(FilterKind.ALL), "all"
    kind, value = "", ""
    if ":" in first and first.split(":", 1)[0] in {"tag", "region"}:
        kind, _, rest = words[0].partition(":")
        value = " ".join([rest, *words[1:]]).strip()
        kind = kind.lower()
    elif first in {"tag", "region"}:
        kind, value = first, " ".join(words[1:])
    elif first.startswith("#") and len(words) == 1:
        kind, value = "tag", first
    if not value or not kind:
        raise usage_error(ctx, name)
    if kind == "tag":
        if len(value.split()) != 1:
            raise usage_error(ctx, name)
        found = await find_tag(ctx, value)
        return Filter(FilterKind.TAG, found.key), found.name
    found = await find_region(ctx, value)
    return Filter(FilterKind.REGION, found.key), found.name


async def target_chat(ctx: Context, words: list[str]) -> tuple[Chat, list[str]]:
    """The chat a (un)subscribe is about, after checking the sender may change it."""
    if words and (words[0].startswith("@") or words[0].lstrip("-").isdigit()):
        resolved = await ctx.questions.resolve_chat(words[0], ctx.sender)
        if isinstance(resolved, str):
            raise UsageError(resolved)
        if resolved is not None:
            return resolved, words[1:]
    chat = ctx.chat
    may_change = chat.kind is ChatKind.PRIVATE or ctx.is_admin
    if not may_change and not await ctx.sender_is_chat_admin():
        raise UsageError(texts.NOT_CHAT_ADMIN)
    return chat, words


@command("subscribe", "subscribe [tag <tag> | region <region>]")
async def subscribe(ctx: Context, cmd: Command) -> Reply:
    chat, words = await target_chat(ctx, cmd.argv)
    parsed = await parse_filter(ctx, words, "subscribe")
    flt, display = parsed or (Filter(FilterKind.ALL), "all")
    sub, created = await ctx.store.chats.subscribe(chat, flt, display, ctx.sender.key)
    what = describe(flt, sub.display or display)
    log.info(
        "subscription %s %s for %s by %s",
        "added" if created else "kept",
        flt,
        chat.key,
        ctx.sender.key,
    )
    elsewhere = chat != ctx.chat
    title = chat.title or chat.chat_id
    if not created:
        if elsewhere:
            return reply(texts.ALREADY_SUBSCRIBED_OTHER.format(title=title, what=what))
        return reply(texts.ALREADY_SUBSCRIBED.format(what=what))
    if elsewhere:
        return reply(texts.SUBSCRIBED_OTHER.format(title=title, what=what))
    lines = [texts.SUBSCRIBED.format(what=what)]
    if flt.kind is not FilterKind.ALL:
        others = await ctx.store.chats.for_chat(chat)
        if any(s.filter.kind is FilterKind.ALL for s in others):
            lines.append(texts.SUBSCRIBE_ALSO_ALL.format(p=ctx.prefix))
    return reply(*lines)


@command("unsubscribe", "unsubscribe [all | tag <tag> | region <region>]")
async def unsubscribe(ctx: Context, cmd: Command) -> Reply:
    chat, words = await target_chat(ctx, cmd.argv)
    if words and words[0].lower() == "all" and len(words) == 1:
        words = []
    if not words:
        count = await ctx.store.chats.unsubscribe(chat, None)
        if count == 0:
            return reply(texts.NO_SUBSCRIPTIONS.format(p=ctx.prefix))
        return reply(texts.UNSUBSCRIBED_ALL.format(count=count))
    current = await ctx.store.chats.for_chat(chat)
    try:
        parsed = await parse_filter(ctx, words, "unsubscribe")
    except UsageError:
        # The tag may have vanished from the archive; match the subscription's own name.
        parsed = _match_existing(current, words)
        if parsed is None:
            raise
    assert parsed is not None
    flt, display = parsed
    count = await ctx.store.chats.unsubscribe(chat, flt)
    what = describe(flt, display)
    if count == 0:
        return reply(texts.NOT_SUBSCRIBED.format(what=what, p=ctx.prefix))
    if chat != ctx.chat:
        title = chat.title or chat.chat_id
        return reply(texts.UNSUBSCRIBED_OTHER.format(title=title, what=what))
    return reply(texts.UNSUBSCRIBED.format(what=what))


def _match_existing(subs: list[Subscription], words: list[str]) -> tuple[Filter, str] | None:
    wanted = " ".join(words).split(":", 1)[-1].removeprefix("tag ").removeprefix("region ")
    wanted = wanted.lstrip("#").casefold()
    for sub in subs:
        if sub.display.casefold() == wanted:
            return sub.filter, sub.display
    return None


@command("subscriptions", "subscriptions")
async def subscriptions(ctx: Context, cmd: Command) -> Reply:
    chat, _ = (ctx.chat, [])
    if cmd.argv:
        resolved = await ctx.questions.resolve_chat(cmd.argv[0], ctx.sender)
        if isinstance(resolved, str):
            raise UsageError(resolved)
        if resolved is not None:
            chat = resolved
    subs = await ctx.store.chats.for_chat(chat)
    if not subs:
        return reply(texts.NO_SUBSCRIPTIONS.format(p=ctx.prefix))
    rows = [text("• " + describe(s.filter, s.display)) for s in subs]
    return reply(lines(text(bold(texts.SUBSCRIPTIONS_TITLE)), *rows))
