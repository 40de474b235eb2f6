"""`statement-bot feeds …` and `statement-bot watch DIR`: the sources on the command line.

Kept beside cli.py rather than in it so that cli.py only registers them. Both need the
configuration (the feeds' defaults, the inbox interval), not only the store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from typing import Any

from bot.config import Config
from bot.feedparse import FeedFormatError
from bot.feeds import FeedFetchError, clean_region, clean_tag, probe, validate_url
from bot.inbox import InboxEvent, InboxWatcher
from bot.store import Store
from bot.store.feeds import Feed, FeedExists

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class SourcesUsageProblem(Exception):
    """Exit 2 with this message (cli.py prints it like its own usage problems)."""


def add_parsers(sub: Any) -> None:
    """The `feeds` and `watch` subcommands, added to cli.py's subparsers."""
    p = sub.add_parser("feeds", help="list, add or delete the website feeds the bot polls")
    p.add_argument("--json", action="store_true", help="the list as a JSON array")
    actions = p.add_subparsers(dest="feeds_action", metavar="ACTION")
    add = actions.add_parser("add", help="poll a new RSS or Atom feed")
    add.add_argument("url", metavar="URL")
    add.add_argument("--tag", help="a hashtag every statement of this feed gets")
    add.add_argument("--region", help="a region every statement of this feed gets")
    add.add_argument(
        "--hold",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep new entries for `feeds release` instead of sending them (default: [feeds] hold)",
    )
    add.add_argument(
        "--import-history",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="archive the entries the feed has now, without sending them; --no-import-history "
        "only notes them (default: [feeds] import_history)",
    )
    add.add_argument(
        "--interval", type=int, metavar="MINUTES", help="minutes between fetches of this feed"
    )
    add.add_argument(
        "--no-check", action="store_true", help="add it without fetching it once first"
    )
    add.add_argument("--by", default="cli", help=argparse.SUPPRESS)
    delete = actions.add_parser("del", help="stop polling a feed (its statements stay)")
    delete.add_argument("feed_id", type=int, metavar="ID")
    actions.add_parser("held", help="statements from feeds held for release")
    for name, text in (("release", "send held statements"), ("drop", "never send them")):
        q = actions.add_parser(name, help=text)
        q.add_argument("target", metavar="ID|all")
        q.add_argument("--by", default="cli", help=argparse.SUPPRESS)

    p = sub.add_parser("watch", help="publish every statement file that appears in a folder")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--once", action="store_true", help="publish what is there now, then stop")
    p.add_argument("--interval", type=float, help="seconds between looks (default: [inbox])")
    p.add_argument("--by", default="inbox", help=argparse.SUPPRESS)


async def _with_store(config: Config, func: Any, *args: Any) -> int:
    store = await Store.open(config.database)
    try:
        return int(await func(store, *args))
    finally:
        await store.close()


# ------------------------------------------------------------------------ feeds


def feed_json(feed: Feed) -> dict[str, object]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": feed.id,
        "url": feed.url,
        "title": feed.title,
        "tag": feed.tag or None,
        "region": feed.region or None,
        "hold": feed.hold,
        "import_history": feed.import_history,
        "interval": feed.interval,
        "statements": feed.entries,
        "held": feed.held,
        "last_fetch_at": when(feed.last_fetch_at),
        "last_success_at": when(feed.last_success_at),
        "next_fetch_at": when(feed.next_fetch_at),
        "errors": feed.errors,
        "last_error": feed.last_error,
    }


async def _list(store: Store, config: Config, as_json: bool) -> int:
    feeds = await store.feeds.all()
    if as_json:
        json.dump([feed_json(f) for f in feeds], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return EXIT_OK
    # The chat's rendering, as plain text: one view of a feed for admins everywhere.
    from bot.render import to_text
    from bot.views import reply
    from handlers.feeds import feed_lines

    now = time.time()
    for feed in feeds:
        print(to_text(reply(feed_lines(feed, config.feeds.poll_interval, now))))
        print()
    print(f"{len(feeds)} feeds" + ("" if config.feeds.enabled else " (polling switched off)"))
    return EXIT_OK


async def _add(store: Store, config: Config, args: argparse.Namespace) -> int:
    try:
        url = validate_url(args.url)
        tag = clean_tag(args.tag) if args.tag else ""
    except ValueError as exc:
        raise SourcesUsageProblem(str(exc)) from None
    region = clean_region(args.region) if args.region else ""
    if args.interval is not None and args.interval < 1:
        raise SourcesUsageProblem("--interval is in minutes, at least 1")
    hold = config.feeds.hold if args.hold is None else args.hold
    history = config.feeds.import_history if args.import_history is None else args.import_history
    existing = next((f for f in await store.feeds.all() if f.url == url), None)
    if existing is not None:
        raise SourcesUsageProblem(f"that feed is already polled as #{existing.id}")
    title = ""
    if not args.no_check:
        try:
            parsed = await probe(url, config.feeds)
        except (FeedFetchError, FeedFormatError) as exc:
            print(f"rejected  {url}: {exc}", file=sys.stderr)
            return EXIT_REJECTED
        title = parsed.title
        print(f"{url}: {parsed.title or 'untitled'}, {len(parsed.entries)} entries")
    try:
        feed = await store.feeds.add(
            url,
            added_by=args.by,
            tag=tag,
            region=region,
            hold=hold,
            import_history=history,
            interval=None if args.interval is None else args.interval * 60.0,
            title=title,
        )
    except FeedExists as exc:
        raise SourcesUsageProblem(f"that feed is already polled as #{exc.feed_id}") from None
    await store.audit.record(args.by, "addfeed", f"feed {feed.id} {url}")
    first = "archived without sending" if history else "only noted"
    then = "held for `statement-bot feeds release`" if hold else "sent to subscribers"
    print(f"Feed #{feed.id} added. Its current entries will be {first}; new ones {then}.")
    return EXIT_OK


async def _held(store: Store) -> int:
    held = await store.feeds.held()
    for h in held:
        print(f"#{h.statement_id:<6} feed #{h.feed_id:<4} {h.title}  {h.source or ''}".rstrip())
    print(f"{len(held)} held")
    return EXIT_OK


async def _release_or_drop(store: Store, args: argparse.Namespace) -> int:
    action, target = args.feeds_action, args.target.strip().lower()
    if target == "all":
        ids = [h.statement_id for h in await store.feeds.held()]
    elif target.lstrip("#").isdigit():
        ids = [int(target.lstrip("#"))]
    else:
        raise SourcesUsageProblem(f"{action} takes a statement id or 'all'")
    done = 0
    for statement_id in ids:
        if action == "release":
            count = await store.feeds.release(statement_id, args.by)
            if count is None:
                print(f"#{statement_id} is not held", file=sys.stderr)
                continue
            print(f"#{statement_id} released: {count} deliveries queued")
        else:
            if not await store.feeds.drop(statement_id):
                print(f"#{statement_id} is not held", file=sys.stderr)
                continue
            print(f"#{statement_id} will not be sent")
        await store.audit.record(args.by, f"feed {action}", f"statement {statement_id}")
        done += 1
    return EXIT_OK if done or not ids else EXIT_REJECTED


async def _feeds(store: Store, config: Config, args: argparse.Namespace) -> int:
    action = args.feeds_action
    if action is None:
        return await _list(store, config, args.json)
    if action == "add":
        return await _add(store, config, args)
    if action == "del":
        feed = await store.feeds.get(args.feed_id)
        if feed is None or not await store.feeds.delete(args.feed_id):
            raise SourcesUsageProblem(f"there is no feed #{args.feed_id}")
        await store.audit.record("cli", "delfeed", f"feed {feed.id} {feed.url}")
        print(f"Feed #{feed.id} ({feed.url}) is no longer polled; its statements stay.")
        return EXIT_OK
    if action == "held":
        return await _held(store)
    return await _release_or_drop(store, args)


async def cmd_feeds(config: Config, args: argparse.Namespace) -> int:
    return await _with_store(config, _feeds, config, args)


# ------------------------------------------------------------------------ watch


def _print_event(event: InboxEvent) -> None:
    if event.outcome == "rejected":
        print(f"rejected  {event.error}", file=sys.stderr, flush=True)
        return
    words = {
        "published": f"published #{event.statement_id}, {event.deliveries} deliveries queued",
        "unchanged": f"already published as #{event.statement_id}",
        "duplicate": f"same text as #{event.statement_id}; not sent again",
    }
    print(f"{event.name}: {words.get(event.outcome, event.outcome)}", flush=True)


async def _watch(store: Store, config: Config, args: argparse.Namespace) -> int:
    rejected = 0

    def on_event(event: InboxEvent) -> None:
        nonlocal rejected
        rejected += event.outcome == "rejected"
        _print_event(event)

    # Every file's outcome is printed; the log would say the same again (errors it keeps).
    logging.getLogger("bot.inbox").setLevel(logging.ERROR)
    interval = args.interval if args.interval is not None else config.inbox.interval
    watcher = InboxWatcher(
        store, args.dir, interval=max(0.1, interval), published_by=args.by, on_event=on_event
    )
    try:
        await asyncio.to_thread(watcher.prepare)
    except OSError as exc:
        raise SourcesUsageProblem(f"cannot use {args.dir}: {exc.strerror or exc}") from None
    if args.once:
        # Two looks, one interval apart: a file still being written is left for later.
        await watcher.scan()
        await asyncio.sleep(watcher.interval)
        await watcher.scan()
        return EXIT_REJECTED if rejected else EXIT_OK
    print(f"watching {args.dir} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await watcher.start()
    try:
        await stop.wait()
    finally:
        await watcher.stop()
    return EXIT_OK


async def cmd_watch(config: Config, args: argparse.Namespace) -> int:
    logger = logging.getLogger("bot.inbox")
    level = logger.level
    try:
        return await _with_store(config, _watch, config, args)
    finally:
        logger.setLevel(level)


COMMANDS = {"feeds": cmd_feeds, "watch": cmd_watch}


def run(config: Config, args: argparse.Namespace) -> int:
    """Run `feeds` or `watch`; a usage problem exits 2 with its message."""
    try:
        return asyncio.run(COMMANDS[args.command](config, args))
    except SourcesUsageProblem as exc:
        print(f"statement-bot {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
