"""Drives FakeTelegram with the real python-telegram-bot over HTTP.

Why: the fake is only useful if PTB cannot tell it from Telegram, so every test
here goes through ``telegram.Bot``/``Application`` (or raw HTTP) rather than
calling the fake's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import re
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from telegram import Bot as PTBBot
from telegram import (
    BotCommand,
    BotCommandScopeChat,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
)
from telegram.ext import BaseHandler as PTBHandler
from telegram.request import HTTPXRequest
from telegram_api import FakeTelegram, HtmlParseError, parse_html  # tests/ is on sys.path

# PTB itself warns when it builds a RetryAfter (it reads the deprecated int property).
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

USER = 1001
GROUP = -1001234567890
CHANNEL = -1009876543210


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[PTBBot]:
    async with PTBBot(fake.token, base_url=fake.base_url) as client:
        yield client


@contextlib.asynccontextmanager
async def running_app(
    fake: FakeTelegram, *handlers: PTBHandler[Any, Any, Any]
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    """An Application long-polling the fake, as the bot runs in production."""
    app = (
        Application.builder()
        .token(fake.token)
        .base_url(fake.base_url)
        .get_updates_request(HTTPXRequest(connection_pool_size=1, read_timeout=5))
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def retry_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is an int (deprecated, warns) or a timedelta (PTB_TIMEDELTA)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


# ------------------------------------------------------------------------- basics


async def test_get_me_and_tokens(fake: FakeTelegram, bot: PTBBot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (fake.bot_id, fake.bot_username, True)
    assert me.supports_inline_queries is True

    with pytest.raises(InvalidToken, match="rejected by the server"):
        async with PTBBot("999:WRONG", base_url=fake.base_url):
            pass
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")
    assert ("getMe", {}) in fake.calls


async def test_raw_http_shapes(fake: FakeTelegram) -> None:
    fake.add_chat(USER, "private", "Ann")
    base = f"{fake.base_url}{fake.token}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sendmessage", json={"chat_id": USER, "text": "hi"}) as r:
            body = await r.json()
            assert r.status == 200 and body["ok"] is True
            assert body["result"]["text"] == "hi" and isinstance(body["result"]["date"], int)
        async with http.get(f"{base}/sendMessage", params={"chat_id": "5", "text": "x"}) as r:
            assert r.status == 400
            assert await r.json() == {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: chat not found",
            }
        async with http.post(f"{fake.base_url}1:BAD/getMe") as r:
            assert r.status == 401 and (await r.json())["description"] == "Unauthorized"
        async with http.post(f"{base}/fooBar") as r:
            assert (r.status, (await r.json())["description"]) == (404, "Not Found")
        data = aiohttp.FormData({"chat_id": str(USER), "text": "multipart"})
        data.add_field("document", b"x", filename="x.txt")  # forces multipart/form-data
        async with http.post(f"{base}/sendMessage", data=data) as r:
            assert (await r.json())["result"]["text"] == "multipart"
    assert [m["text"] for m in fake.messages_to(USER)] == ["hi", "multipart"]


async def test_send_html_message(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private", "Ann")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="more:1")]])
    first = await bot.send_message(
        USER,
        "<b>Statement</b> &amp; <i>more</i> 😀 <a href='https://example.org'>link</a>",
        parse_mode="HTML",
        reply_markup=keyboard,
    )
    second = await bot.send_message(USER, "plain", reply_to_message_id=first.message_id)

    assert first.text == "Statement & more 😀 link"
    assert [(e.type, e.offset, e.length) for e in first.entities] == [
        ("bold", 0, 9),
        ("italic", 12, 4),
        ("text_link", 20, 4),  # the emoji counts as two UTF-16 units
    ]
    assert first.reply_markup == keyboard
    assert second.message_id == first.message_id + 1
    assert second.reply_to_message is not None
    assert second.reply_to_message.message_id == first.message_id

    sent = fake.messages_to(USER)
    assert sent[0]["plain"] == "Statement & more 😀 link"
    assert sent[0]["text"].startswith("<b>Statement</b>")
    assert sent[0]["parse_mode"] == "HTML"
    assert sent[0]["reply_markup"] == {
        "inline_keyboard": [[{"text": "More", "callback_data": "more:1"}]]
    }
    assert await fake.wait_for_messages(USER, 2) == sent


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<b>open", 'can\'t find end tag corresponding to start tag "b"'),
        ("<p>para</p>", 'unsupported start tag "p" at byte offset 0'),
        ("1 < 2", 'unsupported start tag "" at byte offset 2'),
        ("<b>x</i>", 'unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("<span>x</span>", 'tag "span" must have class "tg-spoiler" at byte offset 0'),
    ],
)
async def test_html_rejected_like_telegram(
    fake: FakeTelegram, bot: PTBBot, text: str, error: str
) -> None:
    fake.add_chat(USER, "private")
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(USER, text, parse_mode="HTML")
    # PTB strips "Bad Request: " and capitalize()s the rest (lower-casing it).
    assert caught.value.message == f"Can't parse entities: {error}"
    assert fake.messages_to(USER) == []
    assert fake.errors[-1]["description"].startswith("Bad Request: can't parse entities: ")


async def test_text_and_button_validation(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(USER + 1, "hi")
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(USER, "<b> </b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(
            USER,
            "hi",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("x", callback_data="d" * 65)]]
            ),
        )
    # Length counts after tags are stripped and entities decoded.
    await bot.send_message(USER, "<b>" + "&amp;" * 4096 + "</b>", parse_mode="HTML")
    assert len(fake.messages_to(USER)) == 1
    assert [name for name, _ in fake.calls] == ["getMe"] + ["sendMessage"] * 5


# ------------------------------------------------------------------ failure injection


async def test_injected_failures_map_to_ptb_exceptions(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    fake.add_chat(-5, "group", "Old group")

    fake.fail_next(
        "sendMessage",
        chat_id=USER,
        error_code=403,
        description="Forbidden: bot was blocked by the user",
    )
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "a")

    fake.fail_next(
        "sendMessage",
        error_code=429,
        description="Too Many Requests: retry after 3",
        parameters={"retry_after": 3},
    )
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(USER, "b")
    assert retry_seconds(flood.value) == 3
    assert fake.too_many_requests == 1

    fake.fail_next(
        "sendMessage",
        chat_id=-5,
        error_code=400,
        description="Bad Request: group chat was upgraded to a supergroup chat",
        parameters={"migrate_to_chat_id": GROUP},
    )
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-5, "c")
    assert migrated.value.new_chat_id == GROUP

    fake.fail_next("sendMessage", error_code=500, description="Internal Server Error", times=2)
    for _ in range(2):
        with pytest.raises(NetworkError, match="Internal Server Error"):
            await bot.send_message(USER, "d")

    await bot.send_message(USER, "e")  # failures were used up
    assert [m["text"] for m in fake.messages_to(USER)] == ["e"]
    assert [name for name, _ in fake.calls].count("sendMessage") == 6


async def test_fail_chat_until_cleared(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    fake.add_chat(USER + 1, "private")
    fake.fail_chat(USER, 403, "Forbidden: user is deactivated")
    for _ in range(3):
        with pytest.raises(Forbidden, match="user is deactivated"):
            await bot.send_message(USER, "x")
    await bot.send_message(USER + 1, "other chats still work")
    fake.clear_failures()
    await bot.send_message(USER, "x")
    assert len(fake.messages_to(USER)) == 1


async def test_world_model_permissions(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(CHANNEL, "channel", "News", username="news")
    fake.add_chat(-7, "group", "Old group")

    msg = await bot.send_message("@news", "to the channel by username")
    assert msg.sender_chat is not None and msg.sender_chat.id == CHANNEL
    assert fake.messages_to(CHANNEL)[0]["chat_id"] == CHANNEL

    fake.set_member(CHANNEL, fake.bot_id, "administrator", can_post_messages=False)
    with pytest.raises(BadRequest, match="Need administrator rights in the channel chat"):
        await bot.send_message(CHANNEL, "x")
    fake.set_member(CHANNEL, fake.bot_id, "left")
    with pytest.raises(Forbidden, match="bot is not a member of the channel chat"):
        await bot.send_message(CHANNEL, "x")

    fake.migrate_group(-7, GROUP)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.send_message(-7, "x")
    assert migrated.value.new_chat_id == GROUP
    await bot.send_message(GROUP, "to the supergroup")

    await bot.leave_chat(GROUP)
    with pytest.raises(Forbidden, match="bot is not a member of the supergroup chat"):
        await bot.send_message(GROUP, "x")


async def test_chat_queries(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(CHANNEL, "channel", "News", username="news")
    fake.user(USER, "Ann", "ann")
    fake.set_member(CHANNEL, USER, "creator")
    fake.set_member(CHANNEL, USER + 1, "administrator", can_post_messages=True)

    chat = await bot.get_chat("@news")
    assert (chat.id, chat.type, chat.title, chat.username) == (CHANNEL, "channel", "News", "news")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(-42)

    owner = await bot.get_chat_member(CHANNEL, USER)
    assert isinstance(owner, ChatMemberOwner) and owner.user.username == "ann"
    me = await bot.get_chat_member(CHANNEL, fake.bot_id)
    assert isinstance(me, ChatMemberAdministrator) and me.can_post_messages is True
    assert isinstance(await bot.get_chat_member(CHANNEL, 777), ChatMemberLeft)

    admins = await bot.get_chat_administrators(CHANNEL)
    assert {a.user.id for a in admins} == {USER, USER + 1, fake.bot_id}
    assert await bot.get_chat_member_count(CHANNEL) == 3
    assert await bot.send_chat_action(CHANNEL, "typing") is True


async def test_edit_and_delete(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    msg = await bot.send_message(USER, "v1")
    edited = await bot.edit_message_text("<b>v2</b>", USER, msg.message_id, parse_mode="HTML")
    assert isinstance(edited, type(msg)) and edited.text == "v2" and edited.edit_date
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("<b>v2</b>", USER, msg.message_id, parse_mode="HTML")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="ok")]])
    await bot.edit_message_reply_markup(USER, msg.message_id, reply_markup=keyboard)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", USER, 999)

    assert await bot.delete_message(USER, msg.message_id) is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(USER, msg.message_id)
    assert [s["method"] for s in fake.sent] == [
        "sendMessage",
        "editMessageText",
        "editMessageReplyMarkup",
        "deleteMessage",
    ]
    assert fake.sent[1]["plain"] == "v2"


async def test_set_my_commands_per_scope(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(GROUP, "supergroup", "Group")
    await bot.set_my_commands([BotCommand("start", "Start"), BotCommand("latest", "Latest")])
    await bot.set_my_commands([BotCommand("start", "Начать")], language_code="ru")
    await bot.set_my_commands(
        [BotCommand("subscribe", "Subscribe this group")], scope=BotCommandScopeChat(GROUP)
    )

    assert [c["command"] for c in fake.commands_for()] == ["start", "latest"]
    assert fake.commands_for(language_code="ru") == [{"command": "start", "description": "Начать"}]
    assert [c["command"] for c in fake.commands_for("chat", GROUP)] == ["subscribe"]
    assert fake.commands_for("all_private_chats") == []

    got = await bot.get_my_commands(scope=BotCommandScopeChat(GROUP))
    assert [c.command for c in got] == ["subscribe"]
    await bot.delete_my_commands(scope=BotCommandScopeChat(GROUP))
    assert fake.commands_for("chat", GROUP) == []

    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Latest", "Upper case is invalid")])


# ----------------------------------------------------------------------- limits


async def test_enforced_limits_private_chat(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    fake.enforce_limits = True
    results = await asyncio.gather(
        *(bot.send_message(USER, f"m{i}") for i in range(3)), return_exceptions=True
    )
    floods = [r for r in results if isinstance(r, RetryAfter)]
    assert len(floods) == 2 and len(fake.messages_to(USER)) == 1
    assert all(retry_seconds(f) == 1 for f in floods)
    assert fake.too_many_requests == 2
    assert fake.errors[-1]["description"] == "Too Many Requests: retry after 1"


async def test_enforced_limits_group_and_global(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.enforce_limits = True
    fake.limits.update(group_per_min=2, global_per_s=3)
    fake.add_chat(GROUP, "supergroup")
    for i in range(2):
        await bot.send_message(GROUP, f"g{i}")
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(GROUP, "g2")
    assert 50 <= retry_seconds(flood.value) <= 60

    for user in (USER, USER + 1):
        fake.add_chat(user, "private")
    await bot.send_message(USER, "third message this second")  # GROUP sent 2 already
    with pytest.raises(RetryAfter):
        await bot.send_message(USER + 1, "fourth")
    assert fake.too_many_requests == 2


async def test_latency(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    fake.latency = 0.2
    started = time.monotonic()
    await asyncio.gather(bot.send_message(USER, "a"), bot.send_message(USER, "b"))
    assert 0.2 <= time.monotonic() - started < 0.6  # concurrent, not serialised


# ---------------------------------------------------------------------- updates


async def test_get_updates_long_poll_and_offsets(fake: FakeTelegram, bot: PTBBot) -> None:
    started = time.monotonic()
    asyncio.get_running_loop().call_later(0.2, fake.inject_message, USER, USER, "hello")
    updates = await bot.get_updates(timeout=5)
    assert 0.15 < time.monotonic() - started < 1.5  # returned on arrival, not at timeout
    assert [u.message.text for u in updates if u.message] == ["hello"]

    fake.inject_message(USER, USER, "two")
    fake.inject_message(USER, USER, "three")
    first = updates[0].update_id
    assert len(await bot.get_updates(offset=first)) == 3  # offset = still unconfirmed
    rest = await bot.get_updates(offset=first + 1)
    assert [u.message.text for u in rest if u.message] == ["two", "three"]
    last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["three"]
    assert await bot.get_updates(offset=last[0].update_id + 1, timeout=0) == ()

    # allowed_updates is remembered and other types are dropped.
    fake.inject_inline_query(USER, "q")
    fake.inject_message(USER, USER, "kept")
    kept = await bot.get_updates(allowed_updates=["message"])
    assert [u.message.text for u in kept if u.message] == ["kept"]


async def test_concurrent_get_updates_conflict(fake: FakeTelegram) -> None:
    async with (
        PTBBot(fake.token, base_url=fake.base_url) as first,
        PTBBot(fake.token, base_url=fake.base_url) as second,
    ):
        older = asyncio.create_task(first.get_updates(timeout=3))
        await asyncio.sleep(0.1)
        newer = asyncio.create_task(second.get_updates(timeout=3))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await older
        fake.inject_message(USER, USER, "x")
        assert len(await newer) == 1


async def _wait(flag: asyncio.Event) -> None:
    await asyncio.wait_for(flag.wait(), 5)


async def test_command_reaches_handler(fake: FakeTelegram) -> None:
    seen: list[str] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        seen.append(update.effective_message.text or "")
        await update.effective_message.reply_html(f"Hello, <b>{context.args[0]}</b>!")

    async with running_app(fake, CommandHandler("start", start)):
        fake.user(USER, "Ann", "ann")
        fake.inject_message(USER, USER, "/start en")
        replies = await fake.wait_for_messages(USER)
    assert seen == ["/start en"]
    assert replies[0]["plain"] == "Hello, en!"
    assert "reply_parameters" not in replies[0]  # PTB's reply_* quotes only outside private chats
    assert fake._updates == []  # the final getUpdates confirmed the offset


async def test_callback_query_reaches_handler(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Next", callback_data="page:2")]])
    sent = await bot.send_message(USER, "Page 1", reply_markup=keyboard)
    received: list[tuple[str | None, str | None]] = []

    async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        received.append((query.data, getattr(query.message, "text", None)))
        await query.answer("Loading…")
        await query.edit_message_text("Page 2")

    async with running_app(fake, CallbackQueryHandler(on_button, pattern=r"^page:")):
        fake.inject_callback(USER, USER, "page:2", sent.message_id)
        answer = await fake.wait_for_call("answerCallbackQuery")
        await fake.wait_for_call("editMessageText")
    assert received == [("page:2", "Page 1")]
    assert answer["text"] == "Loading…"
    assert fake.callback_answers == [answer]
    assert fake.sent[-1]["plain"] == "Page 2"


async def test_inline_query_answer_recorded(fake: FakeTelegram) -> None:
    async def on_inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.inline_query is not None
        await update.inline_query.answer(
            [
                InlineQueryResultArticle(
                    id="s1", title="Statement", input_message_content=InputTextMessageContent("S")
                )
            ],
            cache_time=0,
        )

    async with running_app(fake, InlineQueryHandler(on_inline)):
        fake.inject_inline_query(USER, "climate")
        answer = await fake.wait_for_call("answerInlineQuery")
    assert answer["results"][0]["id"] == "s1"
    assert answer["cache_time"] == 0
    assert fake.inline_answers == [answer]


async def test_my_chat_member_reaches_handler(fake: FakeTelegram, bot: PTBBot) -> None:
    changes: list[tuple[int, str, str]] = []
    done = asyncio.Event()

    async def on_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        change = update.my_chat_member
        assert change is not None
        changes.append(
            (change.chat.id, change.old_chat_member.status, change.new_chat_member.status)
        )
        done.set()

    handler = ChatMemberHandler(on_member, ChatMemberHandler.MY_CHAT_MEMBER)
    async with running_app(fake, handler):
        fake.inject_my_chat_member(USER, USER, "member", "kicked")
        await _wait(done)
    assert changes == [(USER, "member", "kicked")]
    # The world follows: the user blocked the bot.
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "still there?")


# ----------------------------------------------------------------- HTML parser


@pytest.mark.parametrize(
    ("html", "plain", "entities"),
    [
        ("a &lt;b&gt; &amp; &quot;c&quot; &#65;&#x42;", 'a <b> & "c" AB', []),
        ("&nbsp; &unknown; stays", "&nbsp; &unknown; stays", []),
        ("<B>x</>", "x", [("bold", 0, 1)]),
        ("<tg-spoiler>s</tg-spoiler><span class=tg-spoiler>t</span>", "st", None),
        ("<blockquote expandable>q</blockquote>", "q", [("expandable_blockquote", 0, 1)]),
        ('<pre><code class="language-py">x = 1</code></pre>', "x = 1", [("pre", 0, 5)]),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍", [("custom_emoji", 0, 2)]),
    ],
)
def test_parse_html(html: str, plain: str, entities: list[tuple[str, int, int]] | None) -> None:
    text, parsed = parse_html(html)
    assert text == plain
    if entities is not None:
        assert [(e["type"], e["offset"], e["length"]) for e in parsed] == entities


def test_parse_html_errors() -> None:
    with pytest.raises(HtmlParseError, match="Unclosed start tag"):
        parse_html("<b")
    with pytest.raises(HtmlParseError, match="Invalid custom emoji identifier"):
        parse_html('<tg-emoji emoji-id="x">y</tg-emoji>')
    assert parse_html('<pre><code class="language-py">x</code></pre>')[1][0]["language"] == "py"


async def test_wait_for_messages_reports_what_arrived(fake: FakeTelegram, bot: PTBBot) -> None:
    fake.add_chat(USER, "private")
    await bot.send_message(USER, "only one")
    with pytest.raises(AssertionError, match=re.escape("got 1: ['only one']")):
        await fake.wait_for_messages(USER, 2, timeout=0.1)
