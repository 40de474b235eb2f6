"""The Platform protocol: what the service and the broadcaster need from an adapter.

An adapter turns platform input into neutral Commands for `handlers.dispatch`, renders
Replies in the platform's format, and turns the platform's errors into neutral Outcomes.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

from bot.model import Chat, Command, Outcome, Reply, Sent
from handlers import dispatch
from handlers.context import ChatQuestions, Services

log = logging.getLogger(__name__)


class Platform(ChatQuestions, Protocol):
    name: str
    prefix: str

    async def start(self) -> None:
        """Connect and begin receiving commands (returns once running)."""
        ...

    async def stop(self) -> None:
        """Stop receiving; finish what is in flight."""
        ...

    async def send(self, chat: Chat, reply: Reply) -> Outcome:
        """Send one reply (split to the platform's limits); never raises."""
        ...

    async def send_direct(self, user_id: str, reply: Reply) -> Outcome:
        """A private message to a user (broadcast reports to the publishing admin)."""
        ...

    def global_rate(self) -> float:
        """Messages per second across all chats (0: no limit)."""
        ...

    def chat_interval(self, chat: Chat) -> float:
        """Seconds to leave between two messages to one chat."""
        ...

    @property
    def connected(self) -> bool: ...


async def answer(
    services: Services, platform: Platform, cmd: Command
) -> tuple[list[Reply], Outcome | None]:
    """Dispatch a command and send the replies to its chat: the common path of every
    adapter. Returns the replies and the last send outcome."""
    await services.store.chats.upsert(cmd.chat)
    ctx = services.context(cmd.chat, cmd.sender, platform, platform.prefix)
    replies = await dispatch(ctx, cmd)
    outcome: Outcome | None = None
    for reply in replies:
        outcome = await platform.send(cmd.chat, reply)
        if not isinstance(outcome, Sent):
            log.warning("reply to %s in %s not sent: %s", cmd.name, cmd.chat.key, outcome)
            break
    return replies, outcome


_COMMAND = re.compile(r"([A-Za-z][A-Za-z0-9_]*)(?:@(\w+))?(?=\s|$)")


def parse_command_text(text: str, prefixes: tuple[str, ...]) -> tuple[str, str, str] | None:
    """`/tag@Bot iran` → ("tag", "iran", "Bot"); None when the text is not a command.

    Keeps newlines in the arguments: a /publish carries a whole statement.
    """
    stripped = text.lstrip()
    for prefix in prefixes:
        if stripped.startswith(prefix):
            rest = stripped[len(prefix) :]
            match = _COMMAND.match(rest)
            if match is None:
                return None
            return match.group(1).lower(), rest[match.end() :].strip(), match.group(2) or ""
    return None
