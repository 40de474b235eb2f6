"""The command registry: name → handler, usage, help, and who may call it.

Every platform feeds `dispatch` the same neutral Command and renders the Replies it
returns, so a command behaves the same on Telegram, Matrix and the console.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot import metrics, texts
from bot.model import Command, Reply
from bot.views import reply
from handlers.context import ChatQuestions, Context, Pending, Services, Throttle

log = logging.getLogger(__name__)

Handler = Callable[[Context, Command], Awaitable[Reply | list[Reply]]]

MAX_ARGS = 500  # characters, for every command but the ones that carry a text
MAX_TEXT = 30000


class UsageError(Exception):
    """The command was malformed: the message is the one-line answer."""


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    handler: Handler
    admin: bool = False
    hidden: bool = False
    max_args: int = MAX_ARGS

    @property
    def help(self) -> str:
        return texts.HELP.get(self.name, "")


REGISTRY: dict[str, CommandSpec] = {}


def command(
    name: str,
    usage: str = "",
    *,
    admin: bool = False,
    hidden: bool = False,
    max_args: int = MAX_ARGS,
) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        REGISTRY[name] = CommandSpec(name, usage or name, func, admin, hidden, max_args)
        return func

    return register


def visible_commands(is_admin: bool) -> list[CommandSpec]:
    """The commands a user may run, for /help and the platforms' command menus."""
    return [c for c in REGISTRY.values() if not c.hidden and (is_admin or not c.admin)]


async def dispatch(ctx: Context, cmd: Command) -> list[Reply]:
    """Run one command and return what to answer (possibly nothing)."""
    p = ctx.prefix
    if not ctx.is_admin:
        verdict, wait = ctx.services.throttle.check(ctx.sender.key)
        if verdict == "drop":
            log.info("throttled %s in %s: %s dropped", ctx.sender.key, ctx.chat.key, cmd.name)
            return []
        if verdict == "warn":
            log.info("throttled %s in %s", ctx.sender.key, ctx.chat.key)
            limit = ctx.services.throttle.limit
            return [reply(texts.SLOW_DOWN.format(limit=limit, seconds=max(1, round(wait))))]
    name = cmd.name.lower()
    spec = REGISTRY.get(name)
    metrics.command_handled(name if spec is not None else "unknown")
    if spec is None:
        names = [c.name for c in visible_commands(ctx.is_admin)]
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        if close:
            msg = texts.UNKNOWN_COMMAND_SUGGEST.format(p=p, name=cmd.name, suggestion=close[0])
        else:
            msg = texts.UNKNOWN_COMMAND.format(p=p, name=cmd.name)
        return [reply(msg)]
    if spec.admin and not ctx.is_admin:
        log.warning("refused admin command %s from %s in %s", name, ctx.sender.key, ctx.chat.key)
        await ctx.store.audit.record(ctx.sender.key, f"refused:{name}", ctx.chat.key)
        return [reply(texts.NOT_ADMIN.format(p=p, name=name))]
    if len(cmd.args) > spec.max_args:
        return [reply(texts.TOO_LONG.format(length=len(cmd.args), limit=spec.max_args))]
    try:
        result = await spec.handler(ctx, cmd)
    except UsageError as exc:
        return [reply(str(exc))]
    except Exception:
        log.exception("command %s from %s in %s failed", name, ctx.sender.key, ctx.chat.key)
        return [reply(texts.INTERNAL_ERROR)]
    return result if isinstance(result, list) else [result]


def usage_error(ctx: Context, name: str) -> UsageError:
    return UsageError(texts.USAGE.format(p=ctx.prefix, usage=REGISTRY[name].usage))


# Register the commands (import for their side effect on REGISTRY).
from handlers import admin, browse, feeds, subscriptions  # noqa: E402

__all__ = [
    "REGISTRY",
    "ChatQuestions",
    "CommandSpec",
    "Context",
    "Pending",
    "Services",
    "Throttle",
    "UsageError",
    "admin",
    "browse",
    "command",
    "dispatch",
    "feeds",
    "subscriptions",
    "usage_error",
    "visible_commands",
]
