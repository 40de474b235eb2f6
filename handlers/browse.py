"""Reading the archive: start, help, latest, tag, region, search, show, tags, regions."""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable

from bot import texts
from bot.model import Button, Command, Paragraph, Reply, Statement
from bot.regions import country_name, region_key
from bot.store import Named, SearchTooBroad
from bot.views import bold, card, full, italic, lines, reply, text
from handlers import REGISTRY, UsageError, command, usage_error, visible_commands
from handlers.context import Context

MAX_LATEST = 20
Fetch = Callable[[int, int], Awaitable[list[Statement]]]


def split_page(args: str) -> tuple[str, int]:
    """`iran page 2` → ("iran", 2). The page suffix is what the Next button sends."""
    words = args.split()
    if len(words) >= 2 and words[-2].lower() == "page" and words[-1].isdigit():
        return " ".join(words[:-2]), max(1, int(words[-1]))
    return args.strip(), 1


async def result_page(
    ctx: Context, title: str, base_command: str, page: int, fetch: Fetch, per_page: int = 0
) -> Reply | None:
    """One page of statements with Read buttons and Previous/Next; None if empty."""
    size = per_page or ctx.services.page_size
    items = await fetch(size + 1, (page - 1) * size)
    if not items:
        return None
    has_more = len(items) > size
    items = items[:size]
    heading = title if page == 1 else f"{title} ({texts.PAGE.format(page=page)})"
    paragraphs: list[Paragraph] = [text(bold(heading))]
    for st in items:
        paragraphs.extend(card(st, ctx.prefix)[:3])
    buttons: list[tuple[Button, ...]] = [
        tuple(Button(texts.BUTTON_READ.format(id=st.id), f"show {st.id}") for st in items)
    ]
    nav = []
    if page > 1:
        nav.append(Button(texts.BUTTON_PREVIOUS, f"{base_command} page {page - 1}".strip()))
    if has_more:
        nav.append(Button(texts.BUTTON_NEXT, f"{base_command} page {page + 1}".strip()))
    if nav:
        buttons.append(tuple(nav))
    return Reply(tuple(paragraphs), tuple(buttons))


def _suggest(word: str, names: list[str], fmt: str) -> str:
    folded = {n.casefold(): n for n in names}
    close = difflib.get_close_matches(word.casefold(), list(folded), n=3, cutoff=0.6)
    if not close:
        return ""
    return " " + texts.DID_YOU_MEAN.format(options=", ".join(fmt.format(folded[c]) for c in close))


async def find_tag(ctx: Context, raw: str) -> Named:
    """The tag as stored, or a UsageError that names close matches."""
    name = raw.strip().lstrip("#")
    found = await ctx.store.statements.tag(name)
    if found is not None:
        return found
    hint = _suggest(name, await ctx.store.statements.tag_names(), "#{}")
    tail = hint or " " + texts.SEE_ALL_TAGS.format(p=ctx.prefix)
    raise UsageError(texts.UNKNOWN_TAG.format(tag=name) + tail)


async def find_region(ctx: Context, raw: str) -> Named:
    name = raw.strip()
    found = await ctx.store.statements.region(name)
    if found is not None:
        return found
    shown = country_name(region_key(name)) or name
    hint = _suggest(name, await ctx.store.statements.region_names(), "{}")
    tail = hint or " " + texts.SEE_ALL_REGIONS.format(p=ctx.prefix)
    raise UsageError(texts.UNKNOWN_REGION.format(region=shown) + tail)


@command("start", "start")
async def start(ctx: Context, cmd: Command) -> Reply | list[Reply]:
    payload = cmd.args.strip()
    # Deep links: t.me/<bot>?start=tag_iran | region_iran | s_12
    for prefix, target in (("tag_", "tag"), ("region_", "region"), ("s_", "show")):
        if payload.startswith(prefix) and len(payload) > len(prefix):
            value = payload[len(prefix) :].replace("_", " ").replace("-", " ")
            return await REGISTRY[target].handler(ctx, _with_args(cmd, target, value))
    return reply(texts.WELCOME, texts.WELCOME_NEXT.format(p=ctx.prefix))


def _with_args(cmd: Command, name: str, args: str) -> Command:
    return Command(name, args, cmd.chat, cmd.sender, cmd.message_id)


@command("help", "help [command]")
async def help_(ctx: Context, cmd: Command) -> Reply:
    p = ctx.prefix
    wanted = cmd.args.strip().lstrip("/!").lower()
    if wanted:
        spec = REGISTRY.get(wanted)
        if spec is None or (spec.admin and not ctx.is_admin):
            raise UsageError(texts.UNKNOWN_COMMAND.format(p=p, name=wanted))
        return reply(text(bold(f"{p}{spec.usage}")), spec.help)
    specs = visible_commands(ctx.is_admin)
    blocks = [
        lines(
            text(bold(texts.HELP_TITLE)),
            *(text(f"{p}{s.usage} — {s.help}") for s in specs if not s.admin),
        )
    ]
    admin_specs = [s for s in specs if s.admin]
    if admin_specs:
        blocks.append(
            lines(
                text(bold(texts.HELP_ADMIN_TITLE)),
                *(text(f"{p}{s.usage} — {s.help}") for s in admin_specs),
            )
        )
    blocks.append(text(italic(texts.HELP_MORE.format(p=p))))
    return Reply(tuple(blocks))


@command("latest", "latest [N]")
async def latest(ctx: Context, cmd: Command) -> Reply:
    args, page = split_page(cmd.args)
    count = 0
    if args:
        if not args.isdigit():
            raise UsageError(
                texts.NOT_A_NUMBER.format(value=args, p=ctx.prefix, usage="latest [N]")
            )
        count = int(args)
        if not 1 <= count <= MAX_LATEST:
            raise UsageError(texts.OUT_OF_RANGE.format(what="N", low=1, high=MAX_LATEST))
    base = f"latest {count}" if count else "latest"
    result = await result_page(
        ctx, texts.LATEST_TITLE, base, page, ctx.store.statements.latest, per_page=count
    )
    if result is None:
        return reply(texts.NO_STATEMENTS if page == 1 else texts.NO_MORE)
    return result


@command("tag", "tag <tag>")
async def tag(ctx: Context, cmd: Command) -> Reply:
    args, page = split_page(cmd.args)
    if not args or len(args.split()) != 1:
        raise usage_error(ctx, "tag")
    found = await find_tag(ctx, args)

    async def fetch(limit: int, offset: int) -> list[Statement]:
        return await ctx.store.statements.by_tag(found.key, limit, offset)

    title = texts.TAG_TITLE.format(tag=found.name)
    result = await result_page(ctx, title, f"tag {found.name}", page, fetch)
    return result or reply(texts.NO_MORE)


@command("region", "region <region>")
async def region(ctx: Context, cmd: Command) -> Reply:
    args, page = split_page(cmd.args)
    if not args:
        raise usage_error(ctx, "region")
    found = await find_region(ctx, args)

    async def fetch(limit: int, offset: int) -> list[Statement]:
        return await ctx.store.statements.by_region(found.key, limit, offset)

    title = texts.REGION_TITLE.format(region=found.name)
    result = await result_page(ctx, title, f"region {found.name}", page, fetch)
    return result or reply(texts.NO_MORE)


@command("search", "search <words>", max_args=200)
async def search(ctx: Context, cmd: Command) -> Reply:
    words, page = split_page(cmd.args)
    if not words.strip():
        raise UsageError(texts.SEARCH_NEEDS_WORDS.format(p=ctx.prefix))

    async def fetch(limit: int, offset: int) -> list[Statement]:
        return await ctx.store.statements.search(words, limit, offset)

    title = texts.SEARCH_TITLE.format(words=f"“{words}”")
    try:
        result = await result_page(ctx, title, f"search {words}", page, fetch)
    except SearchTooBroad as exc:
        raise UsageError(texts.SEARCH_TOO_BROAD.format(prefix=exc.prefix)) from None
    if result is None:
        return reply(texts.NO_RESULTS.format(words=f"“{words}”") if page == 1 else texts.NO_MORE)
    return result


@command("show", "show <id>")
async def show(ctx: Context, cmd: Command) -> Reply:
    ref = cmd.args.strip().lstrip("#")
    if not ref or len(cmd.args.split()) != 1:
        raise usage_error(ctx, "show")
    statement = None
    if ref.isdigit():
        statement = await ctx.store.statements.get(int(ref))
    else:
        statement = await ctx.store.statements.get_by_slug(ref.lower())
    if statement is None:
        raise UsageError(texts.NO_SUCH_STATEMENT.format(ref=cmd.args.strip(), p=ctx.prefix))
    return full(statement)


async def _counted(ctx: Context, title: str, items: list[Named], fmt: str, cmd: str) -> Reply:
    if not items:
        return reply(text(bold(title)), texts.NONE_YET)
    line = ", ".join(
        texts.STATEMENT_COUNT.format(name=fmt.format(i.name), count=i.count) for i in items
    )
    buttons = [
        tuple(Button(fmt.format(i.name), f"{cmd} {i.name}") for i in items[j : j + 3])
        for j in range(0, min(len(items), 12), 3)
    ]
    return reply(text(bold(title)), line, buttons=buttons)


@command("tags", "tags")
async def tags(ctx: Context, cmd: Command) -> Reply:
    items = await ctx.store.statements.tags(limit=200)
    return await _counted(ctx, texts.TAGS_TITLE, items, "#{}", "tag")


@command("regions", "regions")
async def regions(ctx: Context, cmd: Command) -> Reply:
    items = await ctx.store.statements.regions(limit=200)
    return await _counted(ctx, texts.REGIONS_TITLE, items, "{}", "region")
