"""Admin commands: publish and announce (each previewed, then confirmed), stats, status.

Nothing reaches subscribers until the admin who asked confirms: a wrong paste costs a
`cancel`, not a retraction sent to thousands of chats.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from bot import texts
from bot.model import Button, Command, Filter, FilterKind, Reply
from bot.regions import region_key
from bot.statements import StatementError, parse_statement
from bot.store import tag_key
from bot.views import announcement, bold, full, lines, reply, text
from handlers import MAX_TEXT, UsageError, command
from handlers.browse import find_region, find_tag
from handlers.context import Context, Pending

log = logging.getLogger(__name__)


def _confirm_reply(ctx: Context, pending: Pending, audience: int) -> Reply:
    minutes = max(1, round(ctx.services.pending.ttl / 60))
    return reply(
        texts.PUBLISH_AUDIENCE.format(
            count=audience, minutes=minutes, p=ctx.prefix, code=pending.code
        ),
        buttons=[
            (
                Button(texts.CONFIRM_BUTTON, f"confirm {pending.code}"),
                Button(texts.CANCEL_BUTTON, f"cancel {pending.code}"),
            )
        ],
    )


def _new_pending(ctx: Context, kind: str) -> Pending:
    services = ctx.services
    return Pending(
        code=services.pending.new_code(),
        kind=kind,
        author=ctx.sender,
        chat=ctx.chat,
        expires_at=time.monotonic() + services.pending.ttl,
    )


@command("publish", "publish <statement text>", admin=True, max_args=MAX_TEXT)
async def publish(ctx: Context, cmd: Command) -> list[Reply]:
    body = cmd.args.strip()
    if not body:
        raise UsageError(texts.PUBLISH_NEEDS_TEXT.format(p=ctx.prefix))
    try:
        statement = parse_statement(body, default_published_at=datetime.now(UTC))
    except StatementError as exc:
        raise UsageError(texts.PUBLISH_INVALID.format(reason=str(exc))) from None
    existing = await ctx.store.statements.find_by_hash(statement.content_hash)
    if existing is not None:
        return [reply(texts.PUBLISH_DUPLICATE.format(id=existing))]
    pending = _new_pending(ctx, "statement")
    pending.statement = statement
    ctx.services.pending.add(pending)
    audience = await ctx.store.outbox.audience(
        [tag_key(t) for t in statement.tags], [region_key(r) for r in statement.regions]
    )
    log.info("publish preview %s by %s: %d chats", pending.code, ctx.sender.key, audience)
    return [reply(texts.PUBLISH_PREVIEW), full(statement), _confirm_reply(ctx, pending, audience)]


@command("announce", "announce [tag:<tag> | region:<region>] <text>", admin=True, max_args=4000)
async def announce(ctx: Context, cmd: Command) -> list[Reply]:
    body = cmd.args.strip()
    flt, display = Filter(FilterKind.ALL), "all"
    first, _, rest = body.partition(" ")
    lowered = first.lower()
    if lowered.startswith("tag:") and len(first) > 4:
        found = await find_tag(ctx, first[4:])
        flt, display, body = Filter(FilterKind.TAG, found.key), found.name, rest.strip()
    elif lowered.startswith("region:") and len(first) > 7:
        found = await find_region(ctx, first[7:].replace("_", " "))
        flt, display, body = Filter(FilterKind.REGION, found.key), found.name, rest.strip()
    if not body:
        raise UsageError(texts.ANNOUNCE_NEEDS_TEXT.format(p=ctx.prefix))
    pending = _new_pending(ctx, "announcement")
    pending.text, pending.filter, pending.filter_display = body, flt, display
    ctx.services.pending.add(pending)
    audience = await ctx.store.outbox.audience_for_filter(flt)
    return [
        reply(texts.ANNOUNCE_PREVIEW),
        announcement(body),
        _confirm_reply(ctx, pending, audience),
    ]


@command("confirm", "confirm <code>", admin=True, hidden=True)
async def confirm(ctx: Context, cmd: Command) -> Reply:
    code = cmd.args.strip().lower()
    pending = _take_pending(ctx, code)
    if pending is None:
        if code:
            return reply(texts.CONFIRM_UNKNOWN.format(code=code))
        return reply(texts.CONFIRM_NONE)
    if pending.kind == "statement":
        assert pending.statement is not None
        result = await ctx.store.statements.add(
            pending.statement, deliver=True, published_by=ctx.sender.key
        )
        await ctx.store.audit.record(ctx.sender.key, "publish", f"statement {result.statement.id}")
        log.info(
            "published statement %s by %s to %d chats",
            result.statement.id,
            ctx.sender.key,
            result.deliveries,
        )
        ctx.services.on_enqueued()
        return reply(
            texts.CONFIRMED_STATEMENT.format(id=result.statement.id, count=result.deliveries)
        )
    assert pending.filter is not None
    announcement_id, count = await ctx.store.outbox.announce(
        pending.text, ctx.sender.key, pending.filter, pending.filter_display
    )
    await ctx.store.audit.record(ctx.sender.key, "announce", f"announcement {announcement_id}")
    log.info("announcement %s by %s to %d chats", announcement_id, ctx.sender.key, count)
    ctx.services.on_enqueued()
    return reply(texts.CONFIRMED_ANNOUNCEMENT.format(id=announcement_id, count=count))


@command("cancel", "cancel [code]", admin=True, hidden=True)
async def cancel(ctx: Context, cmd: Command) -> Reply:
    if _take_pending(ctx, cmd.args.strip().lower()) is None:
        return reply(texts.CONFIRM_NONE)
    return reply(texts.CANCELLED)


def _take_pending(ctx: Context, code: str) -> Pending | None:
    """The sender's pending action by code, or their latest one in this chat."""
    pending = ctx.services.pending
    if code:
        return pending.take(code, ctx.sender)
    latest = pending.latest_for(ctx.sender, ctx.chat)
    return None if latest is None else pending.take(latest.code, ctx.sender)


@command("stats", "stats", admin=True)
async def stats(ctx: Context, cmd: Command) -> Reply:
    store = ctx.store
    chats = await store.chats.counts()
    backlog = await store.outbox.backlog()
    rows = [
        text(bold(texts.STATS_TITLE)),
        f"Statements: {await store.statements.count()}",
        f"Hashtags: {len(await store.statements.tag_names())}, "
        f"regions: {len(await store.statements.region_names())}",
        f"Chats reachable: {chats['chats']}, subscribed: {chats['subscribed']}, "
        f"subscriptions: {chats['subscriptions']}",
        "Outbox backlog: " + (", ".join(f"{k} {v}" for k, v in sorted(backlog.items())) or "empty"),
    ]
    return reply(lines(*rows))


@command("status", "status", admin=True)
async def status(ctx: Context, cmd: Command) -> Reply:
    items = await ctx.store.outbox.recent_broadcasts(5)
    if not items:
        return reply(texts.STATUS_NONE)
    rows = [text(bold(texts.STATUS_TITLE))]
    for item in items:
        parts = []
        for platform, counts in sorted(item.counts.items()):
            parts.append(
                f"{platform}: {counts.get('sent', 0)} sent, "
                f"{counts.get('pending', 0) + counts.get('sending', 0)} pending, "
                f"{counts.get('failed', 0)} failed, {counts.get('dropped', 0)} dropped"
            )
        rate = ""
        if item.first_sent_at and item.last_sent_at and item.last_sent_at > item.first_sent_at:
            per_s = item.total("sent") / (item.last_sent_at - item.first_sent_at)
            left = item.total("pending") + item.total("sending")
            rate = f"; {per_s:.1f}/s" + (f", ETA {left / per_s:.0f} s" if left else "")
        rows.append(
            text(
                bold(f"{item.kind} #{item.item_id}"),
                f" {item.title[:60]} — " + ("; ".join(parts) or "no recipients") + rate,
            )
        )
    return reply(lines(*rows))
