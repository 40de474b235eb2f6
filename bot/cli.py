"""The `statement-bot` command. Exit codes: 0 done, 1 some input rejected, 2 usage error."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bot import cli_sources
from bot.config import Config, ConfigError, load_config
from bot.logs import setup_logging
from bot.model import Filter, FilterKind, Statement
from bot.regions import region_key
from bot.render import to_text
from bot.statements import StatementError, parse_file, statement_files
from bot.store import (
    IMPORT_BATCH,
    ImportOutcome,
    SchemaError,
    SearchTooBroad,
    Store,
    latest_version,
    tag_key,
)
from bot.store.lock import DatabaseInUse, DatabaseLock
from bot.store.restore import RestoreError, restore
from bot.views import announcement, full

log = logging.getLogger("bot.cli")

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class UsageProblem(Exception):
    """Exit 2 with this message."""


def import_key(path: Path) -> str:
    """A file's identity across machines: its name (moving a folder keeps statements)."""
    return f"file:{path.name}"


def statement_json(st: Statement) -> dict[str, object]:
    return {
        "id": st.id,
        "slug": st.slug,
        "title": st.title,
        "regions": list(st.regions),
        "tags": list(st.tags),
        "published_at": st.published_at.isoformat() if st.published_at else None,
        "source": st.source,
        "language": st.language,
        "body": st.body,
    }


def _confirm(question: str, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise UsageProblem("not a terminal: add --yes to confirm without asking")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in {"y", "yes"}


# ------------------------------------------------------------------------ commands


async def cmd_import(store: Store, args: argparse.Namespace) -> int:
    rejected = 0
    present: list[str] = []
    for raw in args.paths:  # a missing path is one rejection; the others still import
        if Path(raw).exists():  # noqa: ASYNC240
            present.append(raw)
        else:
            rejected += 1
            print(
                f"rejected  {StatementError(raw, None, 'no such file or folder')}", file=sys.stderr
            )
    try:
        files = statement_files(present)
    except StatementError as exc:
        print(f"rejected  {exc}", file=sys.stderr)
        return EXIT_REJECTED
    if len(files) > IMPORT_BATCH:
        await store.db.use_bulk_cache()
    counts = dict.fromkeys(ImportOutcome, 0)
    parsed: list[tuple[Statement, str | None]] = []
    names: list[Path] = []

    async def flush() -> None:
        """One transaction per IMPORT_BATCH files: memory stays flat for any archive."""
        results = await store.statements.add_many(parsed)
        for path, result in zip(names, results, strict=True):
            counts[result.outcome] += 1
            if not args.quiet:
                print(
                    f"{result.outcome.value:<9} {path}  "
                    f"#{result.statement.id} {result.statement.title}"
                )
        parsed.clear()
        names.clear()

    for path in files:
        try:
            parsed.append((parse_file(path), import_key(path)))
            names.append(path)
        except StatementError as exc:
            rejected += 1
            print(f"rejected  {exc}", file=sys.stderr)
        if len(parsed) >= IMPORT_BATCH:
            await flush()
    if parsed:
        await flush()
    print(
        f"{counts[ImportOutcome.ADDED]} added, {counts[ImportOutcome.UPDATED]} updated, "
        f"{counts[ImportOutcome.UNCHANGED]} unchanged, {rejected} rejected"
    )
    return EXIT_REJECTED if rejected else EXIT_OK


async def cmd_publish(store: Store, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        statement = parse_file(path)
    except StatementError as exc:
        print(f"rejected  {exc}", file=sys.stderr)
        return EXIT_REJECTED
    audience = await store.outbox.audience(
        [tag_key(t) for t in statement.tags], [region_key(r) for r in statement.regions]
    )
    print(to_text(full(statement)))
    print(f"\n--- {audience} chats will receive this statement.")
    if not _confirm("Publish it now?", args.yes):
        print("Not published.")
        return EXIT_OK
    result = await store.statements.add(
        statement, import_key=import_key(path), deliver=True, published_by=args.by
    )
    await store.audit.record(args.by or "cli", "publish", f"statement {result.statement.id}")
    if result.outcome is ImportOutcome.ADDED:
        print(f"Published as #{result.statement.id}; {result.deliveries} deliveries queued.")
    else:
        print(
            f"#{result.statement.id} was already published ({result.outcome.value}); "
            "nothing sent again."
        )
    return EXIT_OK


async def cmd_announce(store: Store, args: argparse.Namespace) -> int:
    text = " ".join(args.text).strip()
    if not text:
        raise UsageProblem("announce needs a text")
    flt, display = Filter(FilterKind.ALL), "all"
    if args.tag:
        found = await store.statements.tag(args.tag)
        if found is None:
            raise UsageProblem(f"no statement is tagged #{args.tag.lstrip('#')}")
        flt, display = Filter(FilterKind.TAG, found.key), found.name
    elif args.region:
        found = await store.statements.region(args.region)
        if found is None:
            raise UsageProblem(f"no statement is about {args.region}")
        flt, display = Filter(FilterKind.REGION, found.key), found.name
    audience = await store.outbox.audience_for_filter(flt)
    print(to_text(announcement(text)))
    print(f"\n--- {audience} chats will receive this announcement.")
    if not _confirm("Send it now?", args.yes):
        print("Not sent.")
        return EXIT_OK
    announcement_id, count = await store.outbox.announce(text, args.by or "cli", flt, display)
    await store.audit.record(args.by or "cli", "announce", f"announcement {announcement_id}")
    print(f"Announcement #{announcement_id} queued for {count} chats.")
    return EXIT_OK


async def cmd_statements(store: Store, args: argparse.Namespace) -> int:
    statements: list[Statement]
    if args.tag:
        found = await store.statements.tag(args.tag)
        statements = [] if found is None else await store.statements.by_tag(found.key, args.limit)
    elif args.region:
        found = await store.statements.region(args.region)
        statements = (
            [] if found is None else await store.statements.by_region(found.key, args.limit)
        )
    elif args.search:
        try:
            statements = await store.statements.search(args.search, args.limit)
        except SearchTooBroad as exc:
            raise UsageProblem(str(exc)) from None
    else:
        statements = await store.statements.latest(args.limit)
    if args.json:
        json.dump([statement_json(s) for s in statements], sys.stdout, ensure_ascii=False, indent=2)
        print()
        return EXIT_OK
    for st in statements:
        date = st.published_at.strftime("%Y-%m-%d") if st.published_at else "?"
        region = " / ".join(st.regions) or "-"
        tags = " ".join(f"#{t}" for t in st.tags)
        print(f"#{st.id:<6} {date}  {region:<16} {st.title}  {tags}")
    if not statements:
        print("no statements", file=sys.stderr)
    return EXIT_OK


async def cmd_subscribers(store: Store, args: argparse.Namespace) -> int:
    subscribers = await store.chats.subscribers(args.platform)
    if args.json:
        rows = [
            {
                "platform": s.chat.platform,
                "chat_id": s.chat.chat_id,
                "kind": s.chat.kind.value,
                "title": s.chat.title,
                "active": s.active,
                "filters": list(s.filters),
            }
            for s in subscribers
        ]
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=2)
        print()
        return EXIT_OK
    for s in subscribers:
        state = "" if s.active else " (inactive)"
        print(
            f"{s.chat.key:<40} {s.chat.kind.value:<8} {' '.join(s.filters)}{state}  {s.chat.title}"
        )
    print(f"{len(subscribers)} chats subscribed")
    return EXIT_OK


async def cmd_stats(store: Store, args: argparse.Namespace) -> int:
    chats = await store.chats.counts()
    data = {
        "statements": await store.statements.count(),
        "tags": len(await store.statements.tag_names()),
        "regions": len(await store.statements.region_names()),
        **chats,
        "outbox_backlog": await store.outbox.backlog(),
        "schema_version": await store.db.version(),
    }
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:<16} {value}")
    return EXIT_OK


async def cmd_backup(store: Store, args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    if dest.is_dir():  # noqa: ASYNC240
        dest = dest / f"statement-bot-{datetime.now(UTC):%Y%m%d-%H%M%S}.db"
    if dest.exists() and not args.force:
        raise UsageProblem(f"{dest} exists; add --force to overwrite")
    if dest.exists():
        dest.unlink()
    await store.backup(dest)
    print(f"backup written to {dest}")
    return EXIT_OK


def cmd_restore(config: Config, args: argparse.Namespace) -> int:
    """Refused while a bot serves the database: it holds the lock that restore needs."""
    lock = DatabaseLock.acquire(config.database)
    try:
        target = Path(config.database)
        if target.exists() and not _confirm(
            f"Replace {target} with {args.src}? Everything since that backup is lost.", args.yes
        ):
            print("Not restored.")
            return EXIT_OK
        try:
            version = restore(args.src, target)
        except RestoreError as exc:
            raise UsageProblem(str(exc)) from None
    finally:
        if lock is not None:
            lock.release()
    print(f"restored {args.src} (schema version {version}) into {target}")
    if version < latest_version():
        print(f"statement-bot upgrades it to schema version {latest_version()} when it starts")
    return EXIT_OK


async def _with_store(
    config: Config,
    args: argparse.Namespace,
    func: Callable[[Store, argparse.Namespace], Awaitable[int]],
) -> int:
    store = await Store.open(config.database)
    try:
        return await func(store, args)
    finally:
        await store.close()


async def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from bot.service import Service

    console: bool | None = None
    if args.command == "console":
        console = True
    elif args.command == "serve":
        if not (config.telegram.enabled or config.matrix.enabled):
            raise ConfigError(
                "STATEMENT_BOT_TELEGRAM_TOKEN",
                "serve needs a platform: set STATEMENT_BOT_TELEGRAM_TOKEN (from @BotFather) "
                "or the STATEMENT_BOT_MATRIX_* settings, or use `statement-bot run` for the "
                "terminal chat",
            )
        console = False
    return await Service(config, console=console).run()


# ------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statement-bot",
        description="Publish statements to Telegram and Matrix chats; broadcast new ones.",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings (default: ./statement-bot.toml if present)"
    )
    parser.add_argument(
        "--db", metavar="PATH", help="SQLite database (overrides STATEMENT_BOT_DATABASE)"
    )
    parser.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("run", help="serve every configured platform; the terminal chat when none is")
    sub.add_parser("serve", help="serve the configured platforms (no terminal chat)")
    sub.add_parser("console", help="chat with the bot in the terminal (as its admin)")

    p = sub.add_parser("import", help="import statement files or folders into the archive")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary and rejections")

    p = sub.add_parser("publish", help="publish a statement file and send it to subscribers")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--by", default="cli", help=argparse.SUPPRESS)

    p = sub.add_parser("announce", help="send an announcement to subscribers")
    p.add_argument("text", nargs="+", metavar="TEXT")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--tag", help="only chats subscribed to this tag (or to everything)")
    group.add_argument("--region", help="only chats subscribed to this region (or to everything)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--by", default="cli", help=argparse.SUPPRESS)

    p = sub.add_parser("statements", help="list statements")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--tag")
    group.add_argument("--region")
    group.add_argument("--search", metavar="WORDS")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="a JSON array of statements")

    p = sub.add_parser("subscribers", help="list subscribed chats")
    p.add_argument("--platform", choices=["telegram", "matrix", "console"])
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("stats", help="numbers about the archive, chats and outbox")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("backup", help="copy the database safely, even while the bot runs")
    p.add_argument("dest", metavar="DEST", help="file, or folder for a timestamped file")
    p.add_argument("--force", action="store_true", help="overwrite DEST")

    p = sub.add_parser("restore", help="replace the database with a backup (stop the bot first)")
    p.add_argument("src", metavar="SRC", help="a database written by `statement-bot backup`")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    cli_sources.add_parsers(sub)  # feeds, watch
    return parser


STORE_COMMANDS: dict[str, Callable[[Store, argparse.Namespace], Awaitable[int]]] = {
    "import": cmd_import,
    "publish": cmd_publish,
    "announce": cmd_announce,
    "statements": cmd_statements,
    "subscribers": cmd_subscribers,
    "stats": cmd_stats,
    "backup": cmd_backup,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, database=args.db)
    except ConfigError as exc:
        print(f"statement-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.log_level:
        config.log_level = args.log_level
    secrets = [
        config.telegram.token,
        config.telegram.webhook_secret,
        config.matrix.password,
        config.matrix.access_token,
    ]
    level = config.log_level if args.command in {"run", "serve"} else "WARNING"
    if args.command == "run" and not (config.telegram.enabled or config.matrix.enabled):
        level = args.log_level or "WARNING"  # the terminal chat: keep the screen for the chat
    setup_logging(level, config.log_format, secrets)
    try:
        if args.command == "restore":
            return cmd_restore(config, args)
        if args.command in cli_sources.COMMANDS:
            return cli_sources.run(config, args)
        if args.command in STORE_COMMANDS:
            return asyncio.run(_with_store(config, args, STORE_COMMANDS[args.command]))
        return asyncio.run(cmd_run(config, args))
    except DatabaseInUse as exc:
        print(f"statement-bot {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageProblem as exc:
        print(f"statement-bot {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"statement-bot: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SchemaError as exc:
        print(f"statement-bot: database error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.command not in {"run", "serve", "console"}:
            raise
        # Through logging, so that the secrets filter applies: PTB's InvalidToken, for
        # one, quotes the token it was given.
        log.critical("statement-bot stopped: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return EXIT_REJECTED


if __name__ == "__main__":
    sys.exit(main())
