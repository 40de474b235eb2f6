"""What a handler gets to work with: the store, the chat, the sender, and the few
questions only the platform can answer. No telegram or nio types ever reach here."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.config import FeedsConfig
from bot.model import Chat, Filter, Statement, User
from bot.store import Store


class ChatQuestions(Protocol):
    """Answered by the platform adapter."""

    async def sender_is_chat_admin(self, chat: Chat, sender: User) -> bool:
        """Telegram: getChatMember status; Matrix: power level; console: yes."""
        ...

    async def resolve_chat(self, ref: str, sender: User) -> Chat | str | None:
        """A chat named in a command (`@channel`): the Chat, a refusal reason, or None
        when the platform has no such thing."""
        ...


class Throttle:
    """At most `limit` commands per sender per minute; one warning, then silence."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._warned: dict[str, float] = {}

    def check(self, who: str, now: float | None = None) -> tuple[str, float]:
        """("ok" | "warn" | "drop", seconds until the sender may send again)."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(who, deque())
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) < self.limit:
            hits.append(now)
            self._warned.pop(who, None)
            return "ok", 0.0
        wait = self.window - (now - hits[0])
        if who in self._warned:
            return "drop", wait
        self._warned[who] = now
        return "warn", wait


@dataclass(slots=True)
class Pending:
    """A publish or announcement waiting for its author's confirmation."""

    code: str
    kind: str  # statement | announcement
    author: User
    chat: Chat
    expires_at: float
    statement: Statement | None = None
    text: str = ""
    filter: Filter | None = None
    filter_display: str = ""


class PendingActions:
    """In-memory: a pending publish lives minutes, and a restart should forget it."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[str, Pending] = {}

    def add(self, item: Pending) -> Pending:
        self._expire()
        self._items[item.code] = item
        return item

    def new_code(self) -> str:
        return secrets.token_hex(3)

    def take(self, code: str, author: User) -> Pending | None:
        self._expire()
        item = self._items.get(code.lower())
        if item is None or item.author.key != author.key:
            return None
        return self._items.pop(code.lower())

    def latest_for(self, author: User, chat: Chat) -> Pending | None:
        self._expire()
        mine = [p for p in self._items.values() if p.author == author and p.chat == chat]
        return mine[-1] if mine else None

    def _expire(self) -> None:
        now = time.monotonic()
        for code in [c for c, p in self._items.items() if p.expires_at < now]:
            del self._items[code]


@dataclass(slots=True)
class Services:
    """Shared by every command: built once by the service."""

    store: Store
    admins: frozenset[str]
    page_size: int = 5
    throttle: Throttle = field(default_factory=lambda: Throttle(20))
    pending: PendingActions = field(default_factory=lambda: PendingActions(600.0))
    on_enqueued: Callable[[], None] = lambda: None  # wakes the broadcaster
    feeds: FeedsConfig = field(default_factory=FeedsConfig)  # /addfeed's defaults and limits

    def context(self, chat: Chat, sender: User, questions: ChatQuestions, prefix: str) -> Context:
        return Context(self, chat, sender, sender.key in self.admins, questions, prefix)


@dataclass(slots=True)
class Context:
    services: Services
    chat: Chat
    sender: User
    is_admin: bool
    questions: ChatQuestions
    prefix: str = "/"

    @property
    def store(self) -> Store:
        return self.services.store

    async def sender_is_chat_admin(self) -> bool:
        return await self.questions.sender_is_chat_admin(self.chat, self.sender)
