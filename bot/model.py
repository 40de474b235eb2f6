"""The words of DESIGN.md as plain dataclasses, shared by every layer.

Nothing here knows about SQL, Telegram or Matrix: the store, the handlers and the
platform adapters all speak in these types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# --------------------------------------------------------------------------- statements


@dataclass(frozen=True, slots=True)
class Statement:
    """A published text of the organisation.

    `id` is None until the store has assigned one. `content_hash` is computed by the
    parser over the normalised content, so re-importing an unchanged file is a no-op.
    """

    title: str
    paragraphs: tuple[str, ...]
    regions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    published_at: datetime | None = None
    source: str | None = None
    language: str | None = None
    slug: str = ""
    content_hash: str = ""
    id: int | None = None

    @property
    def body(self) -> str:
        return "\n\n".join(self.paragraphs)


# --------------------------------------------------------------------------- chats


class ChatKind(enum.StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    CHANNEL = "channel"
    ROOM = "room"


@dataclass(frozen=True, slots=True)
class Chat:
    """Where the bot talks. `chat_id` is a string on every platform."""

    platform: str
    chat_id: str
    kind: ChatKind
    title: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.chat_id}"


@dataclass(frozen=True, slots=True)
class User:
    """Who sent a command: `user_id` is the platform's own id (`123`, `@ann:example.org`)."""

    platform: str
    user_id: str
    display_name: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"


class FilterKind(enum.StrEnum):
    ALL = "all"
    TAG = "tag"
    REGION = "region"


@dataclass(frozen=True, slots=True)
class Filter:
    """What a subscription wants: everything, one tag, or one region."""

    kind: FilterKind
    value: str = ""

    def __str__(self) -> str:
        return "all" if self.kind is FilterKind.ALL else f"{self.kind.value}:{self.value}"

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Parse `all`, `tag:<t>` or `region:<r>` (the stored form)."""
        if text == "all":
            return cls(FilterKind.ALL)
        kind, _, value = text.partition(":")
        return cls(FilterKind(kind), value)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    chat: Chat
    filter: Filter
    created_by: str
    created_at: datetime
    active: bool = True
    display: str = ""  # the tag or region as the subscriber wrote it


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One statement or announcement for one chat: a row of the outbox."""

    id: int
    chat: Chat
    subscription_id: int | None
    statement_id: int | None
    announcement_id: int | None
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    message_id: str | None = None
    last_error: str | None = None


# --------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Command:
    """A platform-neutral command: `/tag iran` becomes Command("tag", "iran", ...)."""

    name: str
    args: str
    chat: Chat
    sender: User
    message_id: str | None = None

    @property
    def argv(self) -> list[str]:
        return self.args.split()


# --------------------------------------------------------------------------- replies


class Style(enum.Flag):
    NONE = 0
    BOLD = enum.auto()
    ITALIC = enum.auto()
    CODE = enum.auto()


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text with one style and an optional link target."""

    text: str
    style: Style = Style.NONE
    link: str | None = None


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A block of spans; renderers put a blank line between paragraphs."""

    spans: tuple[Span, ...]

    @property
    def plain(self) -> str:
        return "".join(s.text for s in self.spans)


@dataclass(frozen=True, slots=True)
class Button:
    """A press that runs a command: `command` is the command line without prefix."""

    label: str
    command: str


@dataclass(frozen=True, slots=True)
class Reply:
    """Neutral rich text: paragraphs, optional rows of buttons, link-preview wish."""

    paragraphs: tuple[Paragraph, ...]
    buttons: tuple[tuple[Button, ...], ...] = ()
    preview_url: str | None = None

    @property
    def plain(self) -> str:
        return "\n\n".join(p.plain for p in self.paragraphs)


# --------------------------------------------------------------------------- send outcomes


@dataclass(frozen=True, slots=True)
class Sent:
    message_id: str


@dataclass(frozen=True, slots=True)
class RetryAfter:
    seconds: float


@dataclass(frozen=True, slots=True)
class Gone:
    """Blocked, kicked, chat deleted: deactivate the chat's subscriptions."""

    reason: str


@dataclass(frozen=True, slots=True)
class Moved:
    """Telegram group upgraded to a supergroup."""

    new_chat_id: str


@dataclass(frozen=True, slots=True)
class Transient:
    error: str


@dataclass(frozen=True, slots=True)
class Permanent:
    error: str


Outcome = Sent | RetryAfter | Gone | Moved | Transient | Permanent
