"""Telegram through python-telegram-bot v22: updates in, neutral Commands to the handlers,
Replies back as HTML, and Bot API errors turned into neutral Outcomes.

The Application is run by hand (initialize → start → updater … stop → shutdown) so it
shares the service's event loop with Matrix and the broadcaster. PTB's own rate limiter is
not used: the broadcaster paces every send by the platform's limits from the config.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import logging
import re
import secrets
import warnings
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    Message,
    MessageOriginChannel,
    Update,
)
from telegram import Chat as TgChat
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    TelegramError,
)
from telegram.error import RetryAfter as TgRetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot import metrics, texts
from bot.config import TelegramConfig
from bot.model import (
    Button,
    Chat,
    ChatKind,
    Command,
    Gone,
    Moved,
    Outcome,
    Paragraph,
    Permanent,
    Reply,
    RetryAfter,
    Sent,
    Span,
    Statement,
    Transient,
    User,
)
from bot.platforms.base import answer, parse_command_text
from bot.platforms.telegram_request import AiohttpRequest, FormBody, form_encode
from bot.render import TELEGRAM_LIMIT, split, to_html
from bot.views import full, reply
from handlers import REGISTRY, dispatch, visible_commands
from handlers.context import Services

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "channel_post", "callback_query", "inline_query", "my_chat_member"]
CONCURRENT_UPDATES = 16
CONNECTION_POOL = 64  # the broadcaster sends up to `broadcast.concurrency` at once, plus commands
CALLBACK_DATA_BYTES = 64  # Telegram's limit for callback_data
CALLBACK_TOKENS = 4096  # long button commands remembered in memory (a restart forgets them)
TOKEN_PREFIX = "~"  # no command name starts with it
INLINE_RESULTS = 10
INLINE_CACHE_SECONDS = 300
MAX_PART_WAIT = 60.0  # longest flood wait between the parts of one long reply

# Button commands that are hidden from menus but legitimately carried by buttons.
_HIDDEN_BUTTON_COMMANDS = frozenset({"confirm", "cancel"})
_PAGE = re.compile(r"\bpage \d+$")
_ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
_PRESENT_STATUSES = frozenset(
    {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.MEMBER}
)
# BadRequest descriptions that mean "the bot cannot write there any more".
_GONE_MARKERS = (
    "chat not found",
    "bot was kicked",
    "bot is not a member",
    "need administrator rights",
    "not enough rights",
    "have no rights to send",
    "chat_write_forbidden",
    "group chat was deactivated",
    "user is deactivated",
    "peer_id_invalid",
)

TgApplication = Application[Any, Any, Any, Any, Any, Any]


def retry_seconds(exc: TgRetryAfter) -> float:
    """`RetryAfter.retry_after` is an int (deprecated, warns) or a timedelta."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def outcome_for(exc: Exception) -> Outcome:
    """A Bot API error as the broadcaster's neutral outcome."""
    if isinstance(exc, TgRetryAfter):
        return RetryAfter(retry_seconds(exc))
    if isinstance(exc, ChatMigrated):
        return Moved(str(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return Gone(exc.message)
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is one
        if any(marker in exc.message.lower() for marker in _GONE_MARKERS):
            return Gone(exc.message)
        return Permanent(exc.message)
    if isinstance(exc, NetworkError):  # includes TimedOut and 5xx answers
        return Transient(exc.message)
    if isinstance(exc, TelegramError):
        return Permanent(exc.message)
    return Transient(f"{type(exc).__name__}: {exc}")


def chat_kind(chat_type: str) -> ChatKind:
    if chat_type == ChatType.PRIVATE:
        return ChatKind.PRIVATE
    if chat_type == ChatType.CHANNEL:
        return ChatKind.CHANNEL
    return ChatKind.GROUP  # group and supergroup


def neutral_chat(chat: TgChat) -> Chat:
    return Chat("telegram", str(chat.id), chat_kind(chat.type), chat.effective_name or "")


def _api_chat_id(chat_id: str) -> int | str:
    """Numeric ids as int; `@username` stays a string."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


class TelegramPlatform:
    """The Telegram adapter: one PTB Application, long polling or a webhook."""

    name = "telegram"
    prefix = "/"

    def __init__(self, config: TelegramConfig, services: Services) -> None:
        self.config = config
        self.services = services
        self.max_part_wait = MAX_PART_WAIT
        self._tokens: OrderedDict[str, str] = OrderedDict()
        self._render_cache: OrderedDict[int, tuple[Reply, list[bytes]]] = OrderedDict()
        self._running = False
        self._request = AiohttpRequest(CONNECTION_POOL, pool_timeout=10.0)
        self.app: TgApplication = (
            Application.builder()
            .token(config.token)
            .base_url(config.api_url)
            .concurrent_updates(CONCURRENT_UPDATES)
            .request(self._request)
            .job_queue(None)
            .build()
        )
        self.app.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST, self._on_message
            )
        )
        self.app.add_handler(CallbackQueryHandler(self._on_callback))
        self.app.add_handler(InlineQueryHandler(self._on_inline_query))
        self.app.add_handler(
            ChatMemberHandler(self._on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)
        )
        self.app.add_error_handler(self._on_error)

    # ----------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        return self._running

    @property
    def username(self) -> str:
        return self.app.bot.username or ""

    async def start(self) -> None:
        """getMe, the command menus, then receive updates (polling or webhook)."""
        await self.app.initialize()
        await self._set_commands()
        await self.app.start()
        updater = self.app.updater
        assert updater is not None
        if self.config.mode == "webhook":
            path = urlsplit(self.config.webhook_url).path.lstrip("/")
            await updater.start_webhook(
                listen=self.config.webhook_listen,
                port=self.config.webhook_port,
                url_path=path,
                webhook_url=self.config.webhook_url,
                secret_token=self.config.webhook_secret or None,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
        else:
            await updater.start_polling(
                timeout=self.config.poll_timeout,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
                bootstrap_retries=3,
            )
        self._running = True
        log.info("telegram: running as @%s (%s)", self.username, self.config.mode)

    async def stop(self) -> None:
        """Stop fetching, let running handlers finish, close the HTTP pools."""
        self._running = False
        updater = self.app.updater
        try:
            if updater is not None and updater.running:
                await updater.stop()
            if self.app.running:
                await self.app.stop()
        finally:
            await self.app.shutdown()

    async def _set_commands(self) -> None:
        """The command menu: everyone's commands by default, admins' in their own chats."""

        def menu(is_admin: bool) -> list[BotCommand]:
            return [
                BotCommand(spec.name, (spec.help or spec.usage)[:256])
                for spec in visible_commands(is_admin)
            ]

        bot = self.app.bot
        try:
            await bot.set_my_commands(menu(False), scope=BotCommandScopeDefault())
        except TelegramError as exc:
            log.warning("telegram: setMyCommands (default) failed: %s", exc)
        admin_ids = [
            int(a.partition(":")[2])
            for a in self.services.admins
            if a.startswith("telegram:") and a.partition(":")[2].isdigit()
        ]
        for user_id in sorted(admin_ids):
            try:
                await bot.set_my_commands(menu(True), scope=BotCommandScopeChat(user_id))
            except TelegramError as exc:
                # Typical: the admin never opened a chat with the bot ("chat not found").
                log.warning("telegram: admin menu for chat %s not set: %s", user_id, exc)

    # ----------------------------------------------------------------- sending

    def _rendered(self, reply: Reply) -> list[bytes]:
        """sendMessage's parameters per part, form-encoded (see FormBody), but chat_id.

        A broadcast sends one Reply object to thousands of chats: it is rendered and
        encoded once, not once per chat."""
        cached = self._render_cache.get(id(reply))
        if cached is not None and cached[0] is reply:
            return cached[1]
        parts = []
        for part in split(reply, TELEGRAM_LIMIT):
            wire = {
                "text": to_html(part),
                "parse_mode": ParseMode.HTML.value,
                "link_preview_options": json.dumps(self._preview(part).to_dict()),
            }
            markup = self._markup(part.buttons)
            if markup is not None:
                wire["reply_markup"] = json.dumps(markup.to_dict())
            if self.config.rates.paid_broadcast:
                wire["allow_paid_broadcast"] = "true"
            parts.append(form_encode(wire))
        self._render_cache[id(reply)] = (reply, parts)
        while len(self._render_cache) > 32:
            self._render_cache.popitem(last=False)
        return parts

    async def send(self, chat: Chat, reply: Reply) -> Outcome:
        parts = self._rendered(reply)
        url = f"{self.app.bot.base_url}/sendMessage"
        first: str | None = None
        chat_id = form_encode({"chat_id": chat.chat_id})
        for index, form in enumerate(parts):
            waited = 0.0
            while True:
                try:
                    body = FormBody(chat_id + b"&" + form)
                    result = await self._request.post(url, request_data=body)
                    break
                except Exception as exc:
                    outcome = outcome_for(exc)
                    if index == 0:
                        self._log_outcome(chat, outcome, exc)
                        return outcome
                    if isinstance(outcome, RetryAfter) and waited + outcome.seconds <= (
                        self.max_part_wait
                    ):
                        log.info(
                            "telegram: flood wait %.1f s before part %d to %s",
                            outcome.seconds,
                            index + 1,
                            chat.key,
                        )
                        waited += outcome.seconds
                        metrics.rate_limited(self.name)
                        await asyncio.sleep(outcome.seconds)
                        continue
                    log.warning(
                        "telegram: part %d/%d to %s not sent: %s",
                        index + 1,
                        len(parts),
                        chat.key,
                        outcome,
                    )
                    assert first is not None
                    return Sent(first)
            if first is None:
                first = str(result["message_id"])  # type: ignore[call-overload,index]
        assert first is not None
        return Sent(first)

    async def send_direct(self, user_id: str, reply: Reply) -> Outcome:
        return await self.send(Chat(self.name, user_id, ChatKind.PRIVATE), reply)

    def global_rate(self) -> float:
        rates = self.config.rates
        return rates.paid_per_second if rates.paid_broadcast else rates.global_per_second

    def chat_interval(self, chat: Chat) -> float:
        rates = self.config.rates
        if chat.kind is ChatKind.PRIVATE:
            return 1.0 / rates.private_per_second if rates.private_per_second > 0 else 0.0
        return 60.0 / rates.group_per_minute if rates.group_per_minute > 0 else 0.0

    def _log_outcome(self, chat: Chat, outcome: Outcome, exc: Exception) -> None:
        if isinstance(outcome, Transient) and not isinstance(exc, TelegramError):
            log.error("telegram: send to %s failed unexpectedly", chat.key, exc_info=exc)
        else:
            log.info("telegram: send to %s: %s", chat.key, outcome)

    def _preview(self, part: Reply) -> LinkPreviewOptions:
        """Previews off, except for a statement's source link."""
        if part.preview_url:
            return LinkPreviewOptions(url=part.preview_url)
        return LinkPreviewOptions(is_disabled=True)

    def _markup(self, rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
        if not rows:
            return None
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(b.label, callback_data=self._callback_data(b.command))
                    for b in row
                ]
                for row in rows
            ]
        )

    def _callback_data(self, command: str) -> str:
        """The command itself when it fits in 64 bytes, else a token for it."""
        if len(command.encode("utf-8")) <= CALLBACK_DATA_BYTES:
            return command
        token = TOKEN_PREFIX + secrets.token_urlsafe(9)
        self._tokens[token] = command
        while len(self._tokens) > CALLBACK_TOKENS:
            self._tokens.popitem(last=False)
        return token

    def _button_command(self, data: str) -> str | None:
        """What a pressed button asks for, or None for stale or forged data."""
        if data.startswith(TOKEN_PREFIX):
            command = self._tokens.get(data)
            if command is None:
                return None
            self._tokens.move_to_end(data)
        else:
            command = data
        name = command.split(maxsplit=1)[0].lower() if command.strip() else ""
        spec = REGISTRY.get(name)
        if spec is None or (spec.hidden and name not in _HIDDEN_BUTTON_COMMANDS):
            return None
        return command

    # ----------------------------------------------------------------- chat questions

    async def sender_is_chat_admin(self, chat: Chat, sender: User) -> bool:
        if chat.kind is ChatKind.PRIVATE:
            return True
        if sender.user_id == chat.chat_id:  # a channel post, or a group's anonymous admin
            return True
        try:
            user_id = int(sender.user_id)
        except ValueError:
            return False
        if user_id <= 0:  # another chat speaking (e.g. a linked channel)
            return False
        try:
            member = await self.app.bot.get_chat_member(_api_chat_id(chat.chat_id), user_id)
        except TelegramError as exc:
            log.warning("telegram: getChatMember %s in %s failed: %s", user_id, chat.key, exc)
            return False
        return member.status in _ADMIN_STATUSES

    async def resolve_chat(self, ref: str, sender: User) -> Chat | str | None:
        """`@channel` or `-100…`: the chat, once Telegram confirms the sender administers
        it and the bot may post there; otherwise the refusal that says which check failed."""
        ref = ref.strip()
        if not (ref.startswith("@") and len(ref) > 1) and not (
            ref.startswith("-") and ref[1:].isdigit()
        ):
            return None
        bot = self.app.bot
        try:
            tg_chat = await bot.get_chat(_api_chat_id(ref))
        except (BadRequest, Forbidden):
            return texts.TG_CHAT_NOT_FOUND.format(ref=ref)
        except TelegramError as exc:
            log.warning("telegram: getChat %s failed: %s", ref, exc)
            return texts.TG_CHECK_FAILED.format(ref=ref)
        if tg_chat.type == ChatType.PRIVATE:
            return texts.TG_NOT_A_CHANNEL.format(ref=ref)
        chat = neutral_chat(tg_chat)
        title = chat.title or ref
        try:
            if sender.user_id != chat.chat_id:
                status = await self._member_status(tg_chat.id, sender.user_id)
                if status not in _ADMIN_STATUSES:
                    log.info("telegram: %s is %s in %s, not admin", sender.key, status, chat.key)
                    return texts.TG_SENDER_NOT_ADMIN.format(title=title)
            me = await self._bot_member(tg_chat.id)
        except TelegramError as exc:
            log.warning("telegram: checking rights in %s failed: %s", chat.key, exc)
            return texts.TG_CHECK_FAILED.format(ref=ref)
        status = me.status if me is not None else ChatMemberStatus.LEFT
        if chat.kind is ChatKind.CHANNEL:
            may_post = status == ChatMemberStatus.OWNER or (
                status == ChatMemberStatus.ADMINISTRATOR
                and bool(getattr(me, "can_post_messages", False))
            )
            if not may_post:
                return texts.TG_BOT_CANNOT_POST.format(title=title, bot=self.username)
        else:
            present = status in _PRESENT_STATUSES or (
                status == ChatMemberStatus.RESTRICTED
                and bool(getattr(me, "is_member", False))
                and bool(getattr(me, "can_send_messages", False))
            )
            if not present:
                return texts.TG_BOT_NOT_IN_GROUP.format(title=title, bot=self.username)
        return chat

    async def _member_status(self, chat_id: int, user_id: str) -> str:
        try:
            uid = int(user_id)
        except ValueError:
            return ChatMemberStatus.LEFT
        if uid <= 0:
            return ChatMemberStatus.LEFT
        try:
            member = await self.app.bot.get_chat_member(chat_id, uid)
        except (BadRequest, Forbidden):
            return ChatMemberStatus.LEFT
        return member.status

    async def _bot_member(self, chat_id: int) -> Any:
        try:
            return await self.app.bot.get_chat_member(chat_id, self.app.bot.id)
        except (BadRequest, Forbidden):
            return None

    # ----------------------------------------------------------------- updates

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None:
            return
        tg_chat = message.chat
        if message.migrate_to_chat_id:
            await self._moved(tg_chat.id, message.migrate_to_chat_id)
            return
        if message.migrate_from_chat_id:
            await self._moved(message.migrate_from_chat_id, tg_chat.id)
            return
        chat = neutral_chat(tg_chat)
        sender = self._sender(message, chat)
        if sender is None:
            return
        text = message.text or ""
        parsed = parse_command_text(text, (self.prefix,)) if text.startswith("/") else None
        if parsed is None:
            if chat.kind is ChatKind.PRIVATE:
                await self._private_text(message, chat, sender)
            return
        name, args, mention = parsed
        if mention and mention.lower() != self.username.lower():
            return  # addressed to another bot
        if not mention and chat.kind is not ChatKind.PRIVATE and name not in REGISTRY:
            return  # probably another bot's command; don't answer in a shared chat
        cmd = Command(name, args, chat, sender, str(message.message_id))
        log.debug("telegram: /%s from %s in %s", name, sender.key, chat.key)
        await answer(self.services, self, cmd)

    def _sender(self, message: Message, chat: Chat) -> User | None:
        """Who spoke: a user, or a chat (channel post, anonymous admin, linked channel)."""
        if message.sender_chat is not None:
            speaker = message.sender_chat
            return User(self.name, str(speaker.id), speaker.effective_name or "")
        if message.from_user is not None:
            user = message.from_user
            return User(self.name, str(user.id), user.full_name)
        return None

    async def _private_text(self, message: Message, chat: Chat, sender: User) -> None:
        """A forwarded channel post subscribes that channel; other text gets a hint."""
        origin = message.forward_origin
        if isinstance(origin, MessageOriginChannel):
            cmd = Command("subscribe", str(origin.chat.id), chat, sender, str(message.message_id))
            log.info("telegram: %s forwarded a post of %s", sender.key, origin.chat.id)
            await answer(self.services, self, cmd)
            return
        if sender.key not in self.services.admins:
            verdict, _ = self.services.throttle.check(sender.key)
            if verdict != "ok":
                return
        await self.send(chat, reply(texts.TG_NOT_A_COMMAND.format(p=self.prefix)))

    async def _moved(self, old_id: int, new_id: int) -> None:
        log.info("telegram: group %s migrated to supergroup %s", old_id, new_id)
        await self.services.store.chats.move(self.name, str(old_id), str(new_id))

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        command = self._button_command(query.data or "")
        if command is None or query.message is None:
            log.info("telegram: stale or forged button %r from %s", query.data, query.from_user.id)
            await self._answer_query(query, texts.TG_STALE_BUTTON)
            return
        await self._answer_query(query, None)
        chat = neutral_chat(query.message.chat)
        user = query.from_user
        sender = User(self.name, str(user.id), user.full_name)
        name, _, args = command.partition(" ")
        cmd = Command(name.lower(), args.strip(), chat, sender, str(query.message.message_id))
        if _PAGE.search(command) and isinstance(query.message, Message):
            await self._turn_page(cmd, query.message)
            return
        await answer(self.services, self, cmd)
        # Only the bot's admins can use confirm/cancel: someone else's press must not
        # take the buttons away from the admin who is asked.
        if (
            cmd.name in _HIDDEN_BUTTON_COMMANDS
            and sender.key in self.services.admins
            and isinstance(query.message, Message)
        ):
            await self._drop_keyboard(query.message)

    async def _answer_query(self, query: Any, text: str | None) -> None:
        try:
            await query.answer(text=text)
        except TelegramError as exc:  # too old: Telegram gave up waiting; nothing to do
            log.info("telegram: answerCallbackQuery failed: %s", exc)

    async def _turn_page(self, cmd: Command, message: Message) -> None:
        """Next/Previous edit the list in place; anything else is sent as new messages."""
        services = self.services
        await services.store.chats.upsert(cmd.chat)
        ctx = services.context(cmd.chat, cmd.sender, self, self.prefix)
        replies = await dispatch(ctx, cmd)
        if len(replies) == 1 and replies[0].buttons:
            parts = split(replies[0], TELEGRAM_LIMIT)
            if len(parts) == 1:
                try:
                    await message.edit_text(
                        to_html(parts[0]),
                        parse_mode=ParseMode.HTML,
                        reply_markup=self._markup(parts[0].buttons),
                        link_preview_options=self._preview(parts[0]),
                    )
                    return
                except BadRequest as exc:
                    if "not modified" in exc.message.lower():
                        return
                    log.info("telegram: editing page in %s failed: %s", cmd.chat.key, exc)
        for each in replies:
            outcome = await self.send(cmd.chat, each)
            if not isinstance(outcome, Sent):
                break

    async def _drop_keyboard(self, message: Message) -> None:
        """A confirm/cancel button works once: remove the keyboard after the press."""
        if message.reply_markup is None:
            return
        try:
            await message.edit_reply_markup(reply_markup=None)
        except TelegramError as exc:
            log.debug("telegram: removing keyboard in %s failed: %s", message.chat.id, exc)

    async def _on_inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`@bot iran`: matching statements to share (latest ones for an empty query)."""
        query = update.inline_query
        if query is None:
            return
        words = query.query.strip()
        offset = int(query.offset) if query.offset.isdigit() else 0
        statements = self.services.store.statements
        if words:
            found = await statements.search(words, INLINE_RESULTS, offset)
        else:
            found = await statements.latest(INLINE_RESULTS, offset)
        results = [self._inline_result(st) for st in found if st.id is not None]
        next_offset = str(offset + INLINE_RESULTS) if len(found) == INLINE_RESULTS else ""
        await query.answer(
            results,
            cache_time=INLINE_CACHE_SECONDS,
            is_personal=False,
            next_offset=next_offset,
        )

    def _inline_result(self, st: Statement) -> InlineQueryResultArticle:
        link = f"https://t.me/{self.username}?start=s_{st.id}"
        open_link = Paragraph((Span(texts.TG_INLINE_OPEN, link=link),))
        statement = full(st)
        reserve = len(open_link.plain) + len(texts.TG_INLINE_TRUNCATED) + 4
        parts = split(Reply(statement.paragraphs), TELEGRAM_LIMIT - reserve)
        paragraphs = list(parts[0].paragraphs)
        if len(parts) > 1:
            paragraphs.append(Paragraph((Span(texts.TG_INLINE_TRUNCATED),)))
        paragraphs.append(open_link)
        content = Reply(tuple(paragraphs), preview_url=st.source)
        description = " · ".join(
            part for part in (" / ".join(st.regions), " ".join(f"#{t}" for t in st.tags)) if part
        )
        return InlineQueryResultArticle(
            id=str(st.id),
            title=st.title,
            description=description or None,
            input_message_content=InputTextMessageContent(
                to_html(content),
                parse_mode=ParseMode.HTML,
                link_preview_options=self._preview(content),
            ),
        )

    async def _on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Keep the chat table true: removed or blocked → deactivate; added → remember."""
        change = update.my_chat_member
        if change is None:
            return
        chat = neutral_chat(change.chat)
        status = change.new_chat_member.status
        if status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED):
            reason = "blocked by the user" if chat.kind is ChatKind.PRIVATE else f"bot {status}"
            count = await self.services.store.chats.deactivate(self.name, chat.chat_id, reason)
            log.info("telegram: %s %s; %d subscriptions deactivated", chat.key, reason, count)
        elif status in _PRESENT_STATUSES:
            await self.services.store.chats.upsert(chat)
            log.info("telegram: bot is %s in %s", status, chat.key)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id: int | None = None
        chat_id: int | None = None
        if isinstance(update, Update):
            update_id = update.update_id
            chat_id = update.effective_chat.id if update.effective_chat else None
        error = context.error
        text = str(error).replace(self.config.token, "***") if self.config.token else str(error)
        log.error(
            "telegram: update %s in chat %s failed: %s: %s",
            update_id,
            chat_id,
            type(error).__name__,
            text,
            exc_info=error,
        )
