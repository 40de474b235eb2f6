"""Admin commands for website feeds: /feeds, /addfeed, /delfeed.

The poller does the fetching (bot/feeds.py); these commands only change the list in the
store and show its state, so they work the same whether or not a poller runs here.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from bot import texts
from bot.feedparse import FeedFormatError
from bot.feeds import FeedFetchError, clean_region, clean_tag, probe, validate_url
from bot.model import Command, Paragraph, Reply
from bot.store.feeds import Feed, FeedExists
from bot.views import bold, lines, reply, text
from handlers import UsageError, command, usage_error
from handlers.context import Context

log = logging.getLogger(__name__)


def span(seconds: float) -> str:
    """A rounded duration: `45 s`, `12 min`, `3 h`, `4 days`."""
    seconds = abs(seconds)
    if seconds < 60:
        return texts.SPAN_SECONDS.format(n=round(seconds))
    if seconds < 120 * 60:
        return texts.SPAN_MINUTES.format(n=round(seconds / 60))
    if seconds < 48 * 3600:
        return texts.SPAN_HOURS.format(n=round(seconds / 3600))
    return texts.SPAN_DAYS.format(n=round(seconds / 86400))


def _ago(moment: datetime, now: float) -> str:
    delta = now - moment.timestamp()
    return texts.FEED_NOW if delta < 1 else texts.FEED_AGO.format(span=span(delta))


def _in(moment: datetime, now: float) -> str:
    delta = moment.timestamp() - now
    return texts.FEED_NOW if delta < 1 else texts.FEED_IN.format(span=span(delta))


def feed_lines(feed: Feed, default_interval: float, now: float) -> Paragraph:
    """One feed in /feeds: what it is, how it is set, how it is doing."""
    head = texts.FEED_LINE.format(id=feed.id, url=feed.url)
    first = text(bold(head), f" — {feed.title}") if feed.title else text(bold(head))
    settings = []
    if feed.tag:
        settings.append(texts.FEED_DEFAULT_TAG.format(tag=feed.tag))
    if feed.region:
        settings.append(texts.FEED_DEFAULT_REGION.format(region=feed.region))
    if feed.hold:
        settings.append(texts.FEED_HOLD)
    settings.append(texts.FEED_EVERY.format(span=span(feed.interval or default_interval)))
    settings.append(texts.FEED_ENTRIES.format(entries=feed.entries, held=feed.held))
    if feed.last_fetch_at is None:
        state = texts.FEED_NEVER_FETCHED
    else:
        outcome = (
            texts.FEED_ERROR.format(count=feed.errors, error=feed.last_error)
            if feed.errors
            else texts.FEED_OK
        )
        state = texts.FEED_LAST_FETCH.format(when=_ago(feed.last_fetch_at, now), state=outcome)
    status = f"{state} · {texts.FEED_NEXT_POLL.format(when=_in(feed.next_fetch_at, now))}"
    return lines(first, " · ".join(settings), status)


def _feed_id(ctx: Context, raw: str, name: str) -> int:
    raw = raw.strip().lstrip("#")
    if not raw.isdigit():
        raise usage_error(ctx, name)
    return int(raw)


@command("feeds", "feeds [held | release <id>|all | drop <id>|all | poll <id>]", admin=True)
async def feeds(ctx: Context, cmd: Command) -> Reply:
    words = cmd.args.split()
    action = words[0].lower() if words else ""
    if not action:
        return await _list(ctx)
    if action == "held" and len(words) == 1:
        return await _held(ctx)
    if action in ("release", "drop") and len(words) == 2:
        return await _release_or_drop(ctx, action, words[1])
    if action == "poll" and len(words) == 2:
        feed_id = _feed_id(ctx, words[1], "feeds")
        if await ctx.store.feeds.get(feed_id) is None:
            return reply(texts.FEED_UNKNOWN.format(id=feed_id, p=ctx.prefix))
        await ctx.store.feeds.poll_soon(feed_id)
        return reply(texts.FEED_POLL_SOON.format(id=feed_id))
    raise usage_error(ctx, "feeds")


async def _list(ctx: Context) -> Reply:
    items = await ctx.store.feeds.all()
    if not items:
        return reply(texts.FEEDS_NONE.format(p=ctx.prefix))
    now = time.time()
    paragraphs: list[Paragraph | str] = [text(bold(texts.FEEDS_TITLE))]
    paragraphs += [feed_lines(f, ctx.services.feeds.poll_interval, now) for f in items]
    if not ctx.services.feeds.enabled:
        paragraphs.append(texts.FEED_DISABLED)
    return reply(*paragraphs)


async def _held(ctx: Context) -> Reply:
    held = await ctx.store.feeds.held()
    if not held:
        return reply(texts.FEEDS_HELD_NONE)
    rows = [
        texts.FEED_HELD_LINE.format(id=h.statement_id, title=h.title, feed=h.feed_id) for h in held
    ]
    return reply(
        lines(text(bold(texts.FEEDS_HELD_TITLE)), *rows),
        texts.FEED_HELD_HINT.format(p=ctx.prefix),
    )


async def _release_or_drop(ctx: Context, action: str, raw: str) -> Reply:
    store = ctx.store.feeds
    if raw.lower() == "all":
        ids = [h.statement_id for h in await store.held()]
    else:
        ids = [_feed_id(ctx, raw, "feeds")]
    total, done = 0, 0
    for statement_id in ids:
        if action == "release":
            count = await store.release(statement_id, ctx.sender.key)
            if count is None:
                continue
            total += count
        elif not await store.drop(statement_id):
            continue
        done += 1
        await ctx.store.audit.record(ctx.sender.key, f"feed {action}", f"statement {statement_id}")
        log.info("held statement %d: %s by %s", statement_id, action, ctx.sender.key)
    if done and action == "release":
        ctx.services.on_enqueued()
    if raw.lower() == "all":
        if not done:
            return reply(texts.FEEDS_HELD_NONE)
        template = texts.FEED_RELEASED_ALL if action == "release" else texts.FEED_DROPPED_ALL
        return reply(template.format(n=done, count=total))
    if not done:
        return reply(texts.FEED_NOT_HELD.format(id=ids[0]))
    if action == "release":
        return reply(texts.FEED_RELEASED.format(id=ids[0], count=total))
    return reply(texts.FEED_DROPPED.format(id=ids[0]))


@command(
    "addfeed",
    "addfeed <url> [tag:<tag>] [region:<region>] [interval:<minutes>] [hold] [nohistory]",
    admin=True,
)
async def addfeed(ctx: Context, cmd: Command) -> Reply:
    words = cmd.args.split()
    if not words:
        raise usage_error(ctx, "addfeed")
    config = ctx.services.feeds
    try:
        url = validate_url(words[0])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    tag = region = ""
    hold, history, interval = config.hold, config.import_history, None
    for word in words[1:]:
        key, sep, value = word.partition(":")
        key = key.lower()
        try:
            if sep and key == "tag" and value:
                tag = clean_tag(value)
            elif sep and key == "region" and value:
                region = clean_region(value)
            elif sep and key == "interval" and value.isdigit() and int(value) >= 1:
                interval = int(value) * 60.0
            elif not sep and key in ("hold", "nohold"):
                hold = key == "hold"
            elif not sep and key in ("history", "nohistory"):
                history = key == "history"
            else:
                raise UsageError(texts.FEED_BAD_OPTION.format(option=word, p=ctx.prefix))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    existing = next((f for f in await ctx.store.feeds.all() if f.url == url), None)
    if existing is not None:
        return reply(texts.FEED_EXISTS.format(id=existing.id))
    try:
        parsed = await probe(url, config)
    except (FeedFetchError, FeedFormatError) as exc:
        return reply(texts.FEED_PROBE_FAILED.format(url=url, reason=exc))
    try:
        feed = await ctx.store.feeds.add(
            url,
            added_by=ctx.sender.key,
            tag=tag,
            region=region,
            hold=hold,
            import_history=history,
            interval=interval,
            title=parsed.title,
        )
    except FeedExists as exc:
        return reply(texts.FEED_EXISTS.format(id=exc.feed_id))
    await ctx.store.audit.record(ctx.sender.key, "addfeed", f"feed {feed.id} {url}")
    log.info("feed %d (%s) added by %s", feed.id, url, ctx.sender.key)
    return reply(
        texts.FEED_ADDED.format(
            id=feed.id,
            title=parsed.title or url,
            entries=len(parsed.entries),
            history=texts.FEED_ADDED_HISTORY if history else texts.FEED_ADDED_NO_HISTORY,
            then=(texts.FEED_THEN_HELD if hold else texts.FEED_THEN_SENT).format(p=ctx.prefix),
        )
    )


@command("delfeed", "delfeed <id>", admin=True)
async def delfeed(ctx: Context, cmd: Command) -> Reply:
    feed_id = _feed_id(ctx, cmd.args, "delfeed")
    feed = await ctx.store.feeds.get(feed_id)
    if feed is None or not await ctx.store.feeds.delete(feed_id):
        return reply(texts.FEED_UNKNOWN.format(id=feed_id, p=ctx.prefix))
    await ctx.store.audit.record(ctx.sender.key, "delfeed", f"feed {feed_id} {feed.url}")
    log.info("feed %d (%s) deleted by %s", feed_id, feed.url, ctx.sender.key)
    return reply(texts.FEED_DELETED.format(id=feed_id, url=feed.url))
