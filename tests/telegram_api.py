"""A fake Telegram Bot API server for end-to-end tests.

Why: mocking ``telegram.Bot`` hides everything that goes wrong on the wire (how
python-telegram-bot encodes parameters, which exception a given error body turns
into, HTML that Telegram rejects, flood limits). This server speaks the real HTTP
API on 127.0.0.1, so the bot under test runs unmodified with
``base_url=fake.base_url``.

Shapes and error texts follow core.telegram.org/bots/api and tdlib's HTML parser
(``td/telegram/MessageEntity.cpp``, ``do_parse_html``), which produces the
``can't parse entities`` descriptions Telegram returns.

Usage::

    fake = FakeTelegram()
    await fake.start()
    app = Application.builder().token(fake.token).base_url(fake.base_url).build()
    ...
    await fake.stop()

Notes on fidelity:

* Requests are accepted as JSON, form-urlencoded (what PTB v22 sends: every value
  is a string, lists/dicts JSON-encoded) and multipart, by POST or GET.
* Method names are case-insensitive, as on Telegram.
* Only ``parse_mode=HTML`` is validated; Markdown/MarkdownV2 text is stored as is.
* Text length is counted in Unicode code points (measured behaviour of the real
  API); entity offsets are in UTF-16 code units.
* Webhooks are recorded (``setWebhook`` makes ``getUpdates`` answer 409 like
  Telegram) but no updates are POSTed to them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import itertools
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest_asyncio
from aiohttp import web

__all__ = ["FakeTelegram", "HtmlParseError", "parse_html", "telegram_api"]

JSON = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_RESULTS = 50

QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)

# Fields that arrive as strings in form/multipart bodies and must be converted back.
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "from_chat_id",
        "message_id",
        "offset",
        "limit",
        "user_id",
        "reply_to_message_id",
        "message_thread_id",
        "cache_time",
        "max_connections",
        "until_date",
    }
)
_FLOAT_FIELDS = frozenset({"timeout"})
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "disable_web_page_preview",
        "protect_content",
        "allow_sending_without_reply",
        "allow_paid_broadcast",
        "show_alert",
        "is_personal",
        "drop_pending_updates",
        "only_if_banned",
        "revoke_messages",
    }
)
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
        "commands",
        "scope",
        "results",
        "allowed_updates",
        "button",
        "media",
        "menu_button",
        "rights",
        "permissions",
    }
)

# Update types delivered when the bot never specified allowed_updates.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_CHAT_TYPES = frozenset({"private", "group", "supergroup", "channel"})
_MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
_PRESENT_STATUSES = frozenset({"creator", "administrator", "member", "restricted"})

# Methods that fail_chat() blocks: everything that puts or changes content in a chat.
_SEND_PREFIXES = ("send", "edit", "copy", "forward")


class _ApiError(Exception):
    """Raised inside handlers; becomes ``{"ok": false, ...}`` with that HTTP status."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass
class _Failure:
    """An injected failure; ``times`` < 0 means permanent (until cleared)."""

    method: str | None
    chat_id: int | str | None
    error_code: int
    description: str
    parameters: JSON | None
    times: int

    def matches(self, method: str, chat_id: int | str | None) -> bool:
        if self.method is None:
            if not method.lower().startswith(_SEND_PREFIXES):
                return False
        elif self.method.lower() != method.lower():
            return False
        return self.chat_id is None or self.chat_id == chat_id


# --------------------------------------------------------------------------------------
# HTML parse mode (port of tdlib's do_parse_html, which is what the Bot API runs)
# --------------------------------------------------------------------------------------


class HtmlParseError(ValueError):
    """Text as Telegram puts it after ``Bad Request: can't parse entities: ``."""


_SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_TAG_ENTITIES = {
    "i": "italic",
    "em": "italic",
    "b": "bold",
    "strong": "bold",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_ENTITY_PRIORITY = {
    "blockquote": 0,
    "expandable_blockquote": 0,
    "pre": 11,
    "code": 20,
    "text_link": 49,
    "text_mention": 49,
    "bold": 90,
    "italic": 91,
    "underline": 92,
    "strikethrough": 93,
    "spoiler": 94,
    "custom_emoji": 99,
}
_SPACE = frozenset(b" \t\r\n\x00\x0b\x0c")  # td's is_space() counts NUL as space
_NAMED_ENTITIES = {b"lt": "<", b"gt": ">", b"amp": "&", b"quot": '"'}


def _decode_html_entity(data: bytes, pos: int) -> tuple[int, int]:
    """Returns (code point, position after the entity), or (0, pos) if not an entity."""

    def at(i: int) -> int:
        return data[i] if i < len(data) else 0

    end = pos + 1
    res = 0
    if at(pos + 1) == ord("#"):
        end += 1
        if at(pos + 2) == ord("x"):
            end += 1
            while at(end) and chr(at(end)) in "0123456789abcdefABCDEF":
                res = res * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while ord("0") <= at(end) <= ord("9"):
                res = res * 10 + at(end) - ord("0")
                end += 1
        if res == 0 or res >= 0x10FFFF or end - pos >= 10:
            return 0, pos
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        named = _NAMED_ENTITIES.get(data[pos + 1 : end])
        if named is None:
            return 0, pos
        res = ord(named)
    if at(end) == ord(";"):
        end += 1
    return res, end


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def parse_html(text: str) -> tuple[str, list[JSON]]:
    """Parses Telegram HTML into (plain text, entities) or raises HtmlParseError.

    Why a port rather than html.parser: Telegram's rules are its own (unknown tags
    and stray ``<`` are errors, ``&foo;`` is kept literally, ``</>`` closes any tag),
    and the bot must be tested against what Telegram accepts, not what a browser does.
    """
    data = text.encode("utf-8", "surrogatepass")
    n = len(data)

    def at(i: int) -> int:
        return data[i] if i < n else 0

    out = bytearray()
    utf16 = 0
    # (tag name, argument, utf16 offset, byte position in out)
    stack: list[tuple[str, str, int, int]] = []
    entities: list[JSON] = []
    i = 0
    while i < n:
        c = data[i]
        if c == ord("&"):
            code, new_i = _decode_html_entity(data, i)
            if code:
                utf16 += 2 if code > 0xFFFF else 1
                out += chr(code).encode("utf-8", "surrogatepass")
                i = new_i
                continue
        if c != ord("<"):
            if c & 0xC0 != 0x80:  # first byte of a UTF-8 sequence
                utf16 += 2 if c >= 0xF0 else 1
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != ord("/"):
            while at(i) not in _SPACE and at(i) != ord(">"):
                i += 1
            if at(i) == 0:
                raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
            tag = data[begin + 1 : i].decode("utf-8", "replace").lower()
            if tag not in _SUPPORTED_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            while at(i) != ord(">"):
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) == ord(">"):
                    break
                attr_begin = i
                while at(i) not in _SPACE and at(i) not in b"=>/\"'":
                    i += 1
                attr = data[attr_begin:i]
                if not attr:
                    raise HtmlParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) != ord("="):
                    if at(i) == 0:
                        raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                    if tag == "blockquote" and attr == b"expandable":
                        argument = "1"
                    continue
                i += 1
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) == 0:
                    raise HtmlParseError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if at(i) not in b"'\"":
                    token_begin = i
                    while chr(at(i)).isascii() and (chr(at(i)).isalnum() or at(i) in b".-"):
                        i += 1
                    value = data[token_begin:i].decode().lower()
                    if at(i) not in _SPACE and at(i) != ord(">"):
                        raise HtmlParseError(
                            f"Unexpected end of name token at byte offset {token_begin}"
                        )
                else:
                    quote = at(i)
                    i += 1
                    raw = bytearray()
                    while at(i) != quote and at(i) != 0:
                        if at(i) == ord("&"):
                            code, new_i = _decode_html_entity(data, i)
                            if code:
                                raw += chr(code).encode("utf-8", "surrogatepass")
                                i = new_i
                                continue
                        raw.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = raw.decode("utf-8", "replace")
                if at(i) == 0:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {begin}")
                if tag == "a" and attr == b"href":
                    argument = value
                elif tag == "code" and attr == b"class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and attr == b"class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and attr == b"emoji-id":
                    argument = value
                elif tag == "blockquote" and attr == b"expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise HtmlParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {begin}'
                )
            stack.append((tag, argument, utf16, len(out)))
        else:
            if not stack:
                raise HtmlParseError(f"Unexpected end tag at byte offset {begin}")
            while at(i) not in _SPACE and at(i) != ord(">"):
                i += 1
            end_tag = data[begin + 2 : i].decode("utf-8", "replace").lower()
            while at(i) in _SPACE and at(i) != 0:
                i += 1
            if at(i) != ord(">"):
                raise HtmlParseError(f"Unclosed end tag at byte offset {begin}")
            tag, argument, offset, out_pos = stack[-1]
            if end_tag and end_tag != tag:
                raise HtmlParseError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", '
                    f'found "</{end_tag}>"'
                )
            if utf16 > offset:
                _add_html_entity(entities, tag, argument, offset, utf16 - offset, out, out_pos)
            stack.pop()
        i += 1  # skip '>'
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    try:
        plain = bytes(out).decode("utf-8")
    except UnicodeDecodeError:
        raise HtmlParseError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        ) from None
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)
    entities.sort(key=lambda e: (e["offset"], -e["length"], _ENTITY_PRIORITY[e["type"]]))
    return plain, entities


def _add_html_entity(
    entities: list[JSON],
    tag: str,
    argument: str,
    offset: int,
    length: int,
    out: bytearray,
    out_pos: int,
) -> None:
    """Adds the entity a closed tag produces (tdlib's rules, incl. pre+code merging)."""
    if tag in _SIMPLE_TAG_ENTITIES:
        entities.append({"type": _SIMPLE_TAG_ENTITIES[tag], "offset": offset, "length": length})
    elif tag == "tg-emoji":
        if not argument.isdigit() or int(argument) == 0:
            raise HtmlParseError("Invalid custom emoji identifier specified")
        entities.append(
            {
                "type": "custom_emoji",
                "offset": offset,
                "length": length,
                "custom_emoji_id": argument,
            }
        )
    elif tag == "a":
        url = argument or bytes(out[out_pos:]).decode("utf-8", "replace")
        if url.startswith("tg://user?id=") and url[len("tg://user?id=") :].isdigit():
            user = {"id": int(url[len("tg://user?id=") :]), "is_bot": False, "first_name": ""}
            entities.append(
                {"type": "text_mention", "offset": offset, "length": length, "user": user}
            )
        elif url and " " not in url and ("." in url or "://" in url):
            if "://" not in url and not url.startswith(("tg:", "mailto:")):
                url = "http://" + url
            entities.append({"type": "text_link", "offset": offset, "length": length, "url": url})
    elif tag == "pre":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "code"
            and last["offset"] == offset
            and last["length"] == length
            and last.get("language")
        ):
            last["type"] = "pre"
        else:
            entities.append({"type": "pre", "offset": offset, "length": length})
    elif tag == "code":
        last = entities[-1] if entities else None
        if (
            last is not None
            and last["type"] == "pre"
            and last["offset"] == offset
            and last["length"] == length
            and argument
        ):
            last["language"] = argument
        else:
            entity: JSON = {"type": "code", "offset": offset, "length": length}
            if argument:
                entity["language"] = argument  # dropped at the end unless merged into pre
            entities.append(entity)
    elif tag == "blockquote":
        kind = "expandable_blockquote" if argument else "blockquote"
        entities.append({"type": kind, "offset": offset, "length": length})


def _strip_text(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram trims surrounding whitespace from message text; entities follow."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = _utf16_len(text[: len(text) - len(text.lstrip())])
    total = _utf16_len(stripped)
    result = []
    for entity in entities:
        start = max(entity["offset"] - lead, 0)
        end = min(entity["offset"] + entity["length"] - lead, total)
        if end > start:
            result.append({**entity, "offset": start, "length": end - start})
    return stripped, result


# --------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------


class FakeTelegram:
    """An in-process Telegram Bot API server with a small world model.

    Why a world model (chats, members, stored messages) rather than canned replies:
    the bot's behaviour depends on it (chat not found, not an admin in the channel,
    blocked by the user, editing a message that exists) and tests read best when they
    set up the world and then look at what the bot did.
    """

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "StatementTestBot",
        bot_id: int = 123456,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.port = 0
        self.base_url = ""

        # Records
        self.sent: list[JSON] = []
        self.calls: list[tuple[str, JSON]] = []
        self.errors: list[JSON] = []  # every error answered: method, params, error_code, ...
        self.callback_answers: list[JSON] = []
        self.inline_answers: list[JSON] = []
        self.too_many_requests = 0  # 429s answered, enforced or injected

        # Behaviour knobs
        self.latency = 0.0  # seconds slept before answering each sendMessage
        # When True, sendMessage/editMessageText get 429 + retry_after beyond these sliding
        # windows: all chats per 1 s, a private chat (id > 0) per 1 s, a group/channel
        # (id < 0) per 60 s. Windows are shortened by ``tolerance`` so a client pacing
        # exactly at the limit is not failed by timer jitter. Rejected sends do not count.
        self.enforce_limits = False
        self.limits: JSON = {
            "global_per_s": 30,
            "private_per_s": 1,
            "group_per_min": 20,
            "tolerance": 0.05,
        }

        # World
        self.bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Statement Test Bot",
            "username": bot_username,
        }
        self._users: dict[int, JSON] = {bot_id: dict(self.bot_user)}
        self._chats: dict[int, JSON] = {}
        self._members: dict[tuple[int, int], JSON] = {}
        self._migrated: dict[int, int] = {}
        self._messages: dict[tuple[int, int], JSON] = {}
        self._last_message_id: dict[int, int] = collections.defaultdict(int)
        self._commands: dict[tuple[str, int | None, int | None, str], list[JSON]] = {}
        self._webhook: JSON = {}

        # Updates
        self._updates: list[JSON] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._open_callback_queries: dict[str, JSON] = {}
        self._open_inline_queries: dict[str, JSON] = {}
        self._query_ids = itertools.count(4_000_000_000_000_000_001)

        # Failures and limits
        self._failures: list[_Failure] = []
        self._global_sends: collections.deque[float] = collections.deque()
        self._chat_sends: dict[int, collections.deque[float]] = collections.defaultdict(
            collections.deque
        )

        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, tuple[str, Callable[[JSON], Any]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "getUpdates": self._get_updates,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "answerInlineQuery": self._answer_inline_query,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "getChatAdministrators": self._get_chat_administrators,
                "getChatMemberCount": self._get_chat_member_count,
                "leaveChat": self._leave_chat,
                "sendChatAction": self._send_chat_action,
            }.items()
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Binds 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a long poll whose client went away must not linger.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.base_url = f"http://127.0.0.1:{self.port}/bot"
        self._closing = False

    async def stop(self) -> None:
        """Releases pending long polls at once, then shuts the server down."""
        self._closing = True
        self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- records

    def messages_to(self, chat_id: int | str) -> list[JSON]:
        """Successful sendMessage calls to that chat, oldest first."""
        target = self._resolve_chat_id(chat_id)
        return [s for s in self.sent if s["method"] == "sendMessage" and s["chat_id"] == target]

    async def wait_for_messages(
        self,
        chat_id: int | str,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's API
    ) -> list[JSON]:
        """Waits until at least ``count`` messages went to the chat; returns all of them."""

        def check() -> list[JSON] | None:
            found = self.messages_to(chat_id)
            return found if len(found) >= count else None

        try:
            return await self._wait_until(check, timeout)
        except TimeoutError:
            found = self.messages_to(chat_id)
            sends = [(s["method"], s.get("chat_id"), s.get("text")) for s in self.sent]
            errors = [(e["method"], e["error_code"], e["description"]) for e in self.errors]
            raise AssertionError(
                f"expected {count} message(s) to chat {chat_id} within {timeout}s, "
                f"got {len(found)}: {[m.get('text') for m in found]!r}; "
                f"all sends: {sends!r}; errors: {errors!r}"
            ) from None

    async def wait_for_call(
        self,
        method: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - part of the fixture's API
        predicate: Callable[[JSON], bool] | None = None,
        *,
        since: int = 0,
    ) -> JSON:
        """Waits for an API call (successful or not) and returns its params.

        Looks at ``calls[since:]``, so pass ``since=len(fake.calls)`` to ignore older ones.
        """

        def check() -> JSON | None:
            for name, params in self.calls[since:]:
                if name.lower() == method.lower() and (predicate is None or predicate(params)):
                    return params
            return None

        try:
            return await self._wait_until(check, timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {method} call within {timeout}s; calls: {[c[0] for c in self.calls]!r}"
            ) from None

    def commands_for(
        self,
        scope_type: str = "default",
        chat_id: int | str | None = None,
        *,
        user_id: int | None = None,
        language_code: str = "",
    ) -> list[JSON]:
        """Commands set for exactly that scope and language ([] if none)."""
        chat = self._resolve_chat_id(chat_id) if chat_id is not None else None
        return copy.deepcopy(self._commands.get((scope_type, chat, user_id, language_code), []))

    # ---------------------------------------------------------------- world model

    def add_chat(
        self,
        chat_id: int,
        type: str,
        title: str | None = None,
        username: str | None = None,
    ) -> JSON:
        """Creates (or replaces) a chat; for private chats ``title`` is the first name.

        The bot is implicitly a member of groups and an administrator that may post in
        channels; use set_member(chat_id, fake.bot_id, ...) to change that.
        """
        if type not in _CHAT_TYPES:
            raise ValueError(f"unknown chat type {type!r}")
        if (type == "private") != (chat_id > 0):
            raise ValueError("private chats have positive ids, all others negative")
        chat: JSON = {"id": chat_id, "type": type}
        if type == "private":
            if chat_id not in self._users:
                self.user(chat_id, first_name=title or "Ann")
            user = self._users[chat_id]
            if title is not None:
                user["first_name"] = title
            if username is not None:
                user["username"] = username
            chat["first_name"] = user["first_name"]
            if user.get("username"):
                chat["username"] = user["username"]
        else:
            chat["title"] = title if title is not None else f"Chat {chat_id}"
            if username is not None:
                chat["username"] = username
        self._chats[chat_id] = chat
        return copy.deepcopy(chat)

    def set_member(
        self,
        chat_id: int,
        user_id: int,
        status: str,
        *,
        can_post_messages: bool | None = None,
        user: JSON | None = None,
        **rights: Any,
    ) -> None:
        """Sets a user's ChatMember (getChatMember & co.; the bot's own via bot_id).

        The bot's own status decides whether sends succeed: ``left``/``kicked`` in a
        group → 403, non-admin (or admin without can_post_messages) in a channel →
        400, ``kicked`` in a private chat → 403 "bot was blocked by the user".
        Extra keyword arguments override administrator/restricted flags.
        """
        if status not in _MEMBER_STATUSES:
            raise ValueError(f"unknown member status {status!r}")
        chat_id = self._resolve_chat_id(chat_id)
        if user is not None:
            self._users[user_id] = copy.deepcopy(user)
        member = self._member_dict(chat_id, user_id, status, can_post_messages, rights)
        self._members[(chat_id, user_id)] = member

    def migrate_group(self, chat_id: int, new_chat_id: int) -> None:
        """Upgrades a group to a supergroup: sends to the old id answer 400 with
        migrate_to_chat_id from now on, and the supergroup exists."""
        old = self._chats.get(chat_id)
        title = old.get("title") if old else None
        self.add_chat(new_chat_id, "supergroup", title=title)
        for (cid, uid), member in list(self._members.items()):
            if cid == chat_id:
                self._members[(new_chat_id, uid)] = copy.deepcopy(member)
        self._migrated[chat_id] = new_chat_id

    def user(
        self,
        user_id: int,
        first_name: str = "Ann",
        username: str | None = None,
        *,
        language_code: str | None = None,
    ) -> JSON:
        """Registers (or updates) a user and returns its User object."""
        user: JSON = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        self._users[user_id] = user
        chat = self._chats.get(user_id)
        if chat is not None:
            chat["first_name"] = first_name
            chat.pop("username", None)
            if username is not None:
                chat["username"] = username
        return copy.deepcopy(user)

    # ---------------------------------------------------------------- injecting updates

    def inject_message(
        self,
        chat_id: int,
        from_user_id: int,
        text: str,
        *,
        entities: list[JSON] | None = None,
        forward_from_chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> JSON:
        """Queues a user's text message (a bot_command entity is added for "/cmd ...")."""
        chat = self._ensure_chat(chat_id)
        message = self._store_message(
            chat["id"], text=text, from_user=self._user_obj(from_user_id), entities=entities
        )
        if forward_from_chat_id is not None:
            origin_chat = self._ensure_chat(forward_from_chat_id)
            origin: JSON
            if origin_chat["type"] == "channel":
                origin = {
                    "type": "channel",
                    "chat": self._chat_obj(origin_chat["id"]),
                    "message_id": max(self._last_message_id[origin_chat["id"]], 1),
                    "date": _now(),
                }
            else:
                origin = {
                    "type": "chat",
                    "sender_chat": self._chat_obj(origin_chat["id"]),
                    "date": _now(),
                }
            message["forward_origin"] = origin
        if reply_to_message_id is not None:
            replied = self._messages.get((chat["id"], reply_to_message_id))
            if replied is not None:
                message["reply_to_message"] = _without_reply(replied)
        self._messages[(chat["id"], message["message_id"])] = copy.deepcopy(message)
        return self._enqueue("message", message)

    def inject_channel_post(self, chat_id: int, text: str) -> JSON:
        """Queues a post in a channel the bot is in."""
        chat = self._ensure_chat(chat_id, default_type="channel")
        message = self._store_message(chat["id"], text=text, from_user=None, entities=None)
        return self._enqueue("channel_post", message)

    def inject_callback(self, chat_id: int, from_user_id: int, data: str, message_id: int) -> JSON:
        """Queues a button press on a message (its current text and reply_markup).

        A message that does not exist (never sent or deleted) is delivered as an
        InaccessibleMessage (date 0), as Telegram does for old messages.
        """
        chat_id = self._resolve_chat_id(chat_id)
        stored = self._messages.get((chat_id, message_id))
        message = (
            copy.deepcopy(stored)
            if stored is not None
            else {"chat": self._chat_obj(chat_id), "message_id": message_id, "date": 0}
        )
        query_id = str(next(self._query_ids))
        query = {
            "id": query_id,
            "from": self._user_obj(from_user_id),
            "message": message,
            "chat_instance": str(abs(hash((chat_id, self.bot_id))) % 10**18),
            "data": data,
        }
        self._open_callback_queries[query_id] = query
        return self._enqueue("callback_query", query)

    def inject_inline_query(
        self, from_user_id: int, query: str, offset: str = "", *, chat_type: str | None = None
    ) -> JSON:
        """Queues an inline query ("@bot query")."""
        query_id = str(next(self._query_ids))
        inline: JSON = {
            "id": query_id,
            "from": self._user_obj(from_user_id),
            "query": query,
            "offset": offset,
        }
        if chat_type is not None:
            inline["chat_type"] = chat_type
        self._open_inline_queries[query_id] = inline
        return self._enqueue("inline_query", inline)

    def inject_my_chat_member(
        self, chat_id: int, from_user_id: int, old_status: str, new_status: str
    ) -> JSON:
        """Queues a change of the bot's own membership and applies it to the world.

        E.g. (user, user, "member", "kicked") = the user blocked the bot;
        (-100.., admin, "left", "administrator") = the bot was added to a channel.
        """
        chat = self._ensure_chat(chat_id)
        cid = chat["id"]
        old = self._member_dict(cid, self.bot_id, old_status, None, {})
        new = self._member_dict(cid, self.bot_id, new_status, None, {})
        self._members[(cid, self.bot_id)] = copy.deepcopy(new)
        update = {
            "chat": self._chat_obj(cid),
            "from": self._user_obj(from_user_id),
            "date": _now(),
            "old_chat_member": old,
            "new_chat_member": new,
        }
        return self._enqueue("my_chat_member", update)

    # ---------------------------------------------------------------- failures

    def fail_next(
        self,
        method: str,
        *,
        chat_id: int | str | None = None,
        error_code: int,
        description: str,
        parameters: JSON | None = None,
        times: int = 1,
    ) -> None:
        """Makes the next ``times`` calls of ``method`` (to ``chat_id``, if given) fail."""
        target = self._resolve_chat_id(chat_id) if chat_id is not None else None
        self._failures.append(
            _Failure(method, target, error_code, description, parameters, max(times, 1))
        )

    def fail_chat(
        self,
        chat_id: int | str,
        error_code: int,
        description: str,
        parameters: JSON | None = None,
    ) -> None:
        """Makes every send/edit/copy/forward to the chat fail until clear_failures()."""
        target = self._resolve_chat_id(chat_id)
        self._failures.append(_Failure(None, target, error_code, description, parameters, -1))

    def clear_failures(self) -> None:
        self._failures.clear()

    # ================================================================ internals

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(self, check: Callable[[], Any], seconds: float) -> Any:
        """Re-evaluates ``check`` on every state change until it returns non-None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            result = check()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _enqueue(self, kind: str, payload: JSON) -> JSON:
        update = {"update_id": self._next_update_id, kind: copy.deepcopy(payload)}
        self._next_update_id += 1
        self._updates.append(update)
        self._notify()
        return copy.deepcopy(update)

    def _resolve_chat_id(self, chat_id: int | str | None) -> Any:
        """Maps "@username" and numeric strings to the numeric id (unknown stays as is)."""
        if isinstance(chat_id, str):
            if chat_id.startswith("@"):
                name = chat_id[1:].lower()
                for chat in self._chats.values():
                    if str(chat.get("username", "")).lower() == name:
                        return chat["id"]
                return chat_id
            with contextlib.suppress(ValueError):
                return int(chat_id)
        return chat_id

    def _ensure_chat(self, chat_id: int, default_type: str | None = None) -> JSON:
        chat_id = self._resolve_chat_id(chat_id)
        chat = self._chats.get(chat_id)
        if chat is None:
            if default_type is None:
                if chat_id > 0:
                    default_type = "private"
                else:
                    default_type = "supergroup" if str(chat_id).startswith("-100") else "group"
            self.add_chat(chat_id, default_type)
            chat = self._chats[chat_id]
        return chat

    def _user_obj(self, user_id: int) -> JSON:
        if user_id not in self._users:
            self.user(user_id)
        return copy.deepcopy(self._users[user_id])

    def _chat_obj(self, chat_id: int) -> JSON:
        chat = self._chats.get(chat_id) or {"id": chat_id, "type": "group", "title": "?"}
        return copy.deepcopy(chat)

    def _member_dict(
        self,
        chat_id: int,
        user_id: int,
        status: str,
        can_post_messages: bool | None,
        rights: JSON,
    ) -> JSON:
        user = self._user_obj(user_id)
        chat_type = self._chats.get(chat_id, {}).get("type", "group")
        member: JSON = {"user": user, "status": status}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": True,
                    "can_restrict_members": True,
                    "can_promote_members": False,
                    "can_change_info": True,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                }
            )
            if chat_type == "channel":
                member["can_post_messages"] = (
                    True if can_post_messages is None else can_post_messages
                )
                member["can_edit_messages"] = True
            else:
                member["can_pin_messages"] = True
                if chat_type == "supergroup":
                    member["can_manage_topics"] = False
        elif status == "restricted":
            member.update(
                {
                    "is_member": True,
                    "can_send_messages": False,
                    "can_send_audios": False,
                    "can_send_documents": False,
                    "can_send_photos": False,
                    "can_send_videos": False,
                    "can_send_video_notes": False,
                    "can_send_voice_notes": False,
                    "can_send_polls": False,
                    "can_send_other_messages": False,
                    "can_add_web_page_previews": False,
                    "can_change_info": False,
                    "can_invite_users": False,
                    "can_pin_messages": False,
                    "can_manage_topics": False,
                    "can_edit_tag": False,
                    "until_date": 0,
                }
            )
        elif status == "kicked":
            member["until_date"] = 0
        member.update(rights)
        return member

    def _bot_member(self, chat_id: int) -> JSON:
        """The bot's membership: explicit, else member (admin in channels)."""
        explicit = self._members.get((chat_id, self.bot_id))
        if explicit is not None:
            return explicit
        chat_type = self._chats[chat_id]["type"]
        status = "administrator" if chat_type == "channel" else "member"
        return self._member_dict(chat_id, self.bot_id, status, None, {})

    def _store_message(
        self,
        chat_id: int,
        *,
        text: str,
        from_user: JSON | None,
        entities: list[JSON] | None,
    ) -> JSON:
        """Creates a message with the chat's next id (ids are per chat, increasing)."""
        chat = self._chats[chat_id]
        self._last_message_id[chat_id] += 1
        message: JSON = {"message_id": self._last_message_id[chat_id]}
        if from_user is not None and chat["type"] != "channel":
            message["from"] = from_user
        if chat["type"] == "channel":
            message["sender_chat"] = self._chat_obj(chat_id)
        message["chat"] = self._chat_obj(chat_id)
        message["date"] = _now()
        message["text"] = text
        if entities is None and text.startswith("/"):
            command = text.split(maxsplit=1)[0] if text.strip() else text
            entities = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        if entities:
            message["entities"] = copy.deepcopy(entities)
        self._messages[(chat_id, message["message_id"])] = copy.deepcopy(message)
        return message

    # ---------------------------------------------------------------- HTTP plumbing

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error_response(404, "Not Found")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method_in_url = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except _ApiError as exc:
            return _error_response(exc.code, exc.description, exc.parameters)
        entry = self._handlers.get(method_in_url.lower())
        method = entry[0] if entry else method_in_url
        self.calls.append((method, params))
        self._notify()

        try:
            if ":" not in token:
                raise _ApiError(404, "Not Found")
            if token != self.token:
                raise _ApiError(401, "Unauthorized")
            if entry is None:
                raise _ApiError(404, "Not Found")
            if method == "sendMessage" and self.latency > 0:
                await asyncio.sleep(self.latency)
            self._apply_injected_failure(method, params)
            result = await entry[1](params)
        except _ApiError as exc:
            if exc.code == 429:
                self.too_many_requests += 1
            self.errors.append(
                {
                    "method": method,
                    "params": params,
                    "error_code": exc.code,
                    "description": exc.description,
                    "parameters": exc.parameters,
                    "ts": time.monotonic(),
                }
            )
            self._notify()
            return _error_response(exc.code, exc.description, exc.parameters)
        self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _read_params(self, request: web.Request) -> JSON:
        """Merges query string and body (JSON, urlencoded or multipart) into typed params."""
        raw: JSON = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _ApiError(400, "Bad Request: can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _ApiError(400, "Bad Request: JSON object expected")
                raw.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    raw[key] = value if isinstance(value, str) else "<file>"
        return {key: _coerce(key, value) for key, value in raw.items()}

    def _apply_injected_failure(self, method: str, params: JSON) -> None:
        chat_id = self._resolve_chat_id(params.get("chat_id"))
        for failure in self._failures:
            if failure.matches(method, chat_id):
                if failure.times > 0:
                    failure.times -= 1
                    if failure.times == 0:
                        self._failures.remove(failure)
                raise _ApiError(
                    failure.error_code,
                    failure.description,
                    copy.deepcopy(failure.parameters) if failure.parameters else None,
                )

    # ---------------------------------------------------------------- validation helpers

    def _chat_for(self, params: JSON, *, sending: bool) -> JSON:
        """The chat a call targets; raises what Telegram answers for bad targets."""
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise _ApiError(400, "Bad Request: chat_id is empty")
        chat_id = self._resolve_chat_id(raw)
        if isinstance(chat_id, int) and chat_id in self._migrated:
            raise _ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _ApiError(400, "Bad Request: chat not found")
        if sending:
            self._check_can_send(chat)
        return chat

    def _check_can_send(self, chat: JSON) -> None:
        member = self._bot_member(chat["id"])
        status = member["status"]
        kind = chat["type"]
        if kind == "private":
            if status == "kicked":
                raise _ApiError(403, "Forbidden: bot was blocked by the user")
            return
        if status == "kicked":
            raise _ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if status == "left" or (status == "restricted" and not member.get("is_member")):
            raise _ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
        if kind == "channel":
            if status != "creator" and not (
                status == "administrator" and member.get("can_post_messages")
            ):
                raise _ApiError(400, "Bad Request: need administrator rights in the channel chat")
        elif status == "restricted" and not member.get("can_send_messages"):
            raise _ApiError(400, "Bad Request: not enough rights to send text messages to the chat")

    def _check_rate_limits(self, chat_id: int) -> None:
        """Sliding-window flood control; rejected requests do not count."""
        if not self.enforce_limits:
            return
        now = time.monotonic()
        tolerance = float(self.limits.get("tolerance", 0.05))
        windows = [(self._global_sends, 1.0, int(self.limits["global_per_s"]))]
        chat_window = self._chat_sends[chat_id]
        if chat_id > 0:
            windows.append((chat_window, 1.0, int(self.limits["private_per_s"])))
        else:
            windows.append((chat_window, 60.0, int(self.limits["group_per_min"])))
        retry_after = 0
        for sends, window, limit in windows:
            span = window * (1.0 - tolerance)
            while sends and now - sends[0] >= span:
                sends.popleft()
            if len(sends) >= limit:
                retry_after = max(retry_after, math.ceil(sends[0] + span - now), 1)
        if retry_after:
            raise _ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
        for sends, _, _ in windows:
            sends.append(now)

    def _parse_text(self, params: JSON) -> tuple[str, list[JSON]]:
        """Applies parse_mode/entities and Telegram's emptiness and length rules."""
        text = params.get("text")
        if text is None or text == "":
            raise _ApiError(400, "Bad Request: message text is empty")
        text = str(text)
        entities = params.get("entities")
        if entities:
            if not isinstance(entities, list):
                raise _ApiError(400, "Bad Request: can't parse entities JSON object")
            plain, parsed = text, copy.deepcopy(entities)
        elif str(params.get("parse_mode") or "").lower() == "html":
            try:
                plain, parsed = parse_html(text)
            except HtmlParseError as exc:
                raise _ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        else:
            plain, parsed = text, []
        plain, parsed = _strip_text(plain, parsed)
        if not plain:
            raise _ApiError(400, "Bad Request: message text is empty")
        if len(plain) > MAX_TEXT_LENGTH:
            raise _ApiError(400, "Bad Request: message is too long")
        return plain, parsed

    def _check_reply_markup(self, params: JSON) -> JSON | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _ApiError(
                    400,
                    'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup '
                    "must be an Array of Arrays",
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise _ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
                    if "callback_data" in button:
                        size = len(str(button["callback_data"]).encode("utf-8"))
                        if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                            raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _reply_target(self, params: JSON, chat_id: int) -> JSON | None:
        reply = params.get("reply_parameters")
        if reply is None and params.get("reply_to_message_id") is not None:
            reply = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if not reply:
            return None
        target_chat = self._resolve_chat_id(reply.get("chat_id", chat_id))
        replied = self._messages.get((target_chat, int(reply.get("message_id", 0))))
        if replied is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise _ApiError(400, "Bad Request: message to be replied not found")
        return _without_reply(replied)

    def _record_sent(self, method: str, params: JSON, chat_id: int | None, **extra: Any) -> None:
        record = {"method": method, **copy.deepcopy(params)}
        if chat_id is not None:
            record["chat_id"] = chat_id
        record.update(extra)
        record["ts"] = time.monotonic()
        self.sent.append(record)

    def _editable_message(self, params: JSON) -> JSON | None:
        """The stored message an edit targets; None for inline messages."""
        if params.get("inline_message_id"):
            return None
        chat = self._chat_for(params, sending=False)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise _ApiError(400, "Bad Request: message identifier is not specified")
        message = self._messages.get((chat["id"], message_id))
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        sender = message.get("from", {}).get("id")
        if chat["type"] != "channel" and sender != self.bot_id:
            raise _ApiError(400, "Bad Request: message can't be edited")
        return message

    # ---------------------------------------------------------------- methods

    async def _true(self, params: JSON) -> bool:
        return True

    async def _get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self._webhook.get("url"):
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if allowed is not None:
            self._allowed_updates = list(allowed) or None
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]

        # A newer getUpdates terminates this one, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()

        def ready() -> list[JSON] | None:
            if generation != self._poll_generation:
                raise _ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            updates = self._deliverable()
            if updates or self._closing:
                return updates[:limit]
            return None

        try:
            return copy.deepcopy(await self._wait_until(ready, timeout))
        except TimeoutError:
            return []

    def _deliverable(self) -> list[JSON]:
        """Pending updates of the allowed types (others are dropped, as Telegram would)."""
        kept = []
        for update in self._updates:
            kind = next(k for k in update if k != "update_id")
            if self._allowed_updates is None:
                if kind in _DEFAULT_EXCLUDED_UPDATES:
                    continue
            elif kind not in self._allowed_updates:
                continue
            kept.append(update)
        self._updates = kept
        return list(kept)

    async def _set_webhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise _ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        self._webhook = {"url": url} if url else {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _delete_webhook(self, params: JSON) -> bool:
        self._webhook = {}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: JSON) -> JSON:
        return {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    async def _send_message(self, params: JSON) -> JSON:
        chat = self._chat_for(params, sending=True)
        plain, entities = self._parse_text(params)
        markup = self._check_reply_markup(params)
        reply_to = self._reply_target(params, chat["id"])
        self._check_rate_limits(chat["id"])
        message = self._store_message(
            chat["id"], text=plain, from_user=dict(self.bot_user), entities=entities or None
        )
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        preview = params.get("link_preview_options")
        if params.get("disable_web_page_preview"):
            preview = {"is_disabled": True}
        if isinstance(preview, dict) and preview.get("is_disabled"):
            message["link_preview_options"] = {"is_disabled": True}
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
        self._messages[(chat["id"], message["message_id"])] = copy.deepcopy(message)
        self._record_sent(
            "sendMessage", params, chat["id"], message_id=message["message_id"], plain=plain
        )
        return message

    async def _edit_message_text(self, params: JSON) -> JSON | bool:
        message = self._editable_message(params)
        plain, entities = self._parse_text(params)
        markup = self._check_reply_markup(params)
        if message is None:
            self._record_sent("editMessageText", params, None, plain=plain)
            return True
        chat_id = message["chat"]["id"]
        self._check_rate_limits(chat_id)
        new_markup = (
            {"inline_keyboard": markup["inline_keyboard"]}
            if markup and "inline_keyboard" in markup
            else None
        )
        if (
            message["text"] == plain
            and message.get("entities", []) == entities
            and message.get("reply_markup") == new_markup
        ):
            raise _ApiError(400, NOT_MODIFIED)
        message["text"] = plain
        message.pop("entities", None)
        if entities:
            message["entities"] = entities
        message.pop("reply_markup", None)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        message["edit_date"] = _now()
        self._record_sent(
            "editMessageText", params, chat_id, message_id=message["message_id"], plain=plain
        )
        return copy.deepcopy(message)

    async def _edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        message = self._editable_message(params)
        markup = self._check_reply_markup(params)
        if message is None:
            self._record_sent("editMessageReplyMarkup", params, None)
            return True
        new_markup = (
            {"inline_keyboard": markup["inline_keyboard"]}
            if markup and "inline_keyboard" in markup and markup["inline_keyboard"]
            else None
        )
        if message.get("reply_markup") == new_markup:
            raise _ApiError(400, NOT_MODIFIED)
        message.pop("reply_markup", None)
        if new_markup is not None:
            message["reply_markup"] = new_markup
        message["edit_date"] = _now()
        chat_id = message["chat"]["id"]
        self._record_sent(
            "editMessageReplyMarkup", params, chat_id, message_id=message["message_id"]
        )
        return copy.deepcopy(message)

    async def _delete_message(self, params: JSON) -> bool:
        chat = self._chat_for(params, sending=False)
        message_id = params.get("message_id")
        if (chat["id"], message_id) not in self._messages:
            raise _ApiError(400, "Bad Request: message to delete not found")
        del self._messages[(chat["id"], message_id)]
        self._record_sent("deleteMessage", params, chat["id"], message_id=message_id)
        return True

    async def _answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if self._open_callback_queries.pop(query_id, None) is None:
            raise _ApiError(400, QUERY_TOO_OLD)
        self.callback_answers.append(copy.deepcopy(params))
        return True

    async def _answer_inline_query(self, params: JSON) -> bool:
        query_id = str(params.get("inline_query_id") or "")
        if query_id not in self._open_inline_queries:
            raise _ApiError(400, QUERY_TOO_OLD)
        results = params.get("results")
        if not isinstance(results, list):
            raise _ApiError(400, "Bad Request: can't parse inline query results JSON object")
        if len(results) > MAX_INLINE_RESULTS:
            raise _ApiError(400, "Bad Request: RESULTS_TOO_MUCH")
        seen: set[str] = set()
        for result in results:
            result_id = str(result.get("id", "")) if isinstance(result, dict) else ""
            if not isinstance(result, dict) or not result.get("type"):
                raise _ApiError(400, "Bad Request: can't parse InlineQueryResult")
            if not 1 <= len(result_id.encode("utf-8")) <= 64:
                raise _ApiError(400, "Bad Request: RESULT_ID_INVALID")
            if result_id in seen:
                raise _ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
            seen.add(result_id)
        del self._open_inline_queries[query_id]
        self.inline_answers.append(copy.deepcopy(params))
        return True

    def _scope_key(self, params: JSON) -> tuple[str, int | None, int | None, str]:
        scope = params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or not scope.get("type"):
            raise _ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        kind = str(scope["type"])
        chat_id = None
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat = self._chat_for({"chat_id": scope.get("chat_id")}, sending=False)
            chat_id = chat["id"]
        user_id = int(scope["user_id"]) if kind == "chat_member" else None
        language = str(params.get("language_code") or "")
        if language and (len(language) != 2 or not language.isalpha()):
            raise _ApiError(400, "Bad Request: invalid language code specified")
        return kind, chat_id, user_id, language

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise _ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            name = str(command.get("command", "")) if isinstance(command, dict) else ""
            description = str(command.get("description", "")) if isinstance(command, dict) else ""
            if not (
                1 <= len(name) <= 32
                and all(ch.isascii() and (ch.islower() or ch.isdigit() or ch == "_") for ch in name)
            ):
                raise _ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not description.strip():
                raise _ApiError(400, "Bad Request: command description must be non-empty")
            if len(description) > 256:
                raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._scope_key(params)
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, params: JSON) -> list[JSON]:
        return copy.deepcopy(self._commands.get(self._scope_key(params), []))

    async def _delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop(self._scope_key(params), None)
        return True

    async def _get_chat(self, params: JSON) -> JSON:
        chat = self._chat_for(params, sending=False)
        full = copy.deepcopy(chat)
        full.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        if chat["type"] == "private":
            user = self._users.get(chat["id"], {})
            if user.get("last_name"):
                full["last_name"] = user["last_name"]
        return full

    async def _get_chat_member(self, params: JSON) -> JSON:
        chat = self._chat_for(params, sending=False)
        user_id = params.get("user_id")
        if not isinstance(user_id, int) or user_id <= 0:
            raise _ApiError(400, "Bad Request: invalid user_id specified")
        if user_id == self.bot_id:
            return copy.deepcopy(self._bot_member(chat["id"]))
        member = self._members.get((chat["id"], user_id))
        if member is None:
            status = "member" if chat["type"] == "private" and chat["id"] == user_id else "left"
            member = self._member_dict(chat["id"], user_id, status, None, {})
        return copy.deepcopy(member)

    async def _get_chat_administrators(self, params: JSON) -> list[JSON]:
        chat = self._chat_for(params, sending=False)
        if chat["type"] == "private":
            raise _ApiError(400, "Bad Request: there are no administrators in the private chat")
        admins = [
            copy.deepcopy(m)
            for (cid, uid), m in self._members.items()
            if cid == chat["id"] and uid != self.bot_id
            if m["status"] in ("creator", "administrator")
        ]
        bot = self._bot_member(chat["id"])
        if bot["status"] in ("creator", "administrator"):
            admins.append(copy.deepcopy(bot))
        return admins

    async def _get_chat_member_count(self, params: JSON) -> int:
        chat = self._chat_for(params, sending=False)
        if chat["type"] == "private":
            return 2
        count = sum(
            1
            for (cid, uid), m in self._members.items()
            if cid == chat["id"] and uid != self.bot_id
            if m["status"] in _PRESENT_STATUSES and m.get("is_member", True)
        )
        return count + (1 if self._bot_member(chat["id"])["status"] in _PRESENT_STATUSES else 0)

    async def _leave_chat(self, params: JSON) -> bool:
        chat = self._chat_for(params, sending=False)
        if chat["type"] == "private":
            raise _ApiError(
                400, "Bad Request: chat member status can't be changed in private chats"
            )
        if self._bot_member(chat["id"])["status"] not in _PRESENT_STATUSES:
            raise _ApiError(403, f"Forbidden: bot is not a member of the {chat['type']} chat")
        self._members[(chat["id"], self.bot_id)] = self._member_dict(
            chat["id"], self.bot_id, "left", None, {}
        )
        return True

    async def _send_chat_action(self, params: JSON) -> bool:
        self._chat_for(params, sending=True)
        if not params.get("action"):
            raise _ApiError(400, "Bad Request: action is empty")
        return True


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


def _without_reply(message: JSON) -> JSON:
    """Telegram never nests reply_to_message more than one level deep."""
    copied = copy.deepcopy(message)
    copied.pop("reply_to_message", None)
    return copied


def _coerce(key: str, value: Any) -> Any:
    """Restores types of form-encoded values (PTB sends every value as a string)."""
    if not isinstance(value, str):
        return value
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            raise _ApiError(400, f"Bad Request: can't parse {key} JSON object") from None
    if key in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if key in _FLOAT_FIELDS:
        try:
            return float(value)
        except ValueError:
            return value
    if key in _BOOL_FIELDS:
        return value.lower() in ("true", "1")
    return value


def _error_response(code: int, description: str, parameters: JSON | None = None) -> web.Response:
    body: JSON = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


@pytest_asyncio.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    """A started FakeTelegram, stopped after the test."""
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
