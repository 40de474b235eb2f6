"""The Telegram adapter end to end: the real PTB Application against FakeTelegram over HTTP.

Why this way: what breaks on Telegram is on the wire (HTML Telegram rejects, callback data
over 64 bytes, which exception an error body becomes), so the bot runs unmodified with
`api_url` pointing at the fake, and tests look at what arrived there.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from conftest import SAMPLE
from polling import eventually
from telegram_api import FakeTelegram, parse_html

from bot import texts
from bot.config import TelegramConfig, TelegramRates
from bot.model import (
    Chat,
    ChatKind,
    Gone,
    Moved,
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
from bot.platforms.telegram import TelegramPlatform
from bot.render import TELEGRAM_LIMIT
from bot.statements import parse_file, parse_statement
from bot.store import Store
from bot.views import full
from handlers.context import PendingActions, Services, Throttle

pytestmark = [
    pytest.mark.timeout(60),
    # PTB itself reads the deprecated int RetryAfter.retry_after when it builds one.
    pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"),
]

USER = 1001  # Ann, an ordinary user
OTHER = 1002  # Bob, another user
ADMIN = 4242  # a bot admin
GROUP = -1001234567890
CHANNEL = -1009876543210
JSON = dict[str, Any]


@dataclass
class Bot:
    """The running adapter and the fake Telegram around it, with errbot-style helpers."""

    fake: FakeTelegram
    platform: TelegramPlatform
    store: Store

    async def ask(self, chat_id: int, user_id: int, text: str, count: int = 1) -> list[JSON]:
        """Send a message as a user; return the next `count` messages the bot sent there."""
        before = len(self.fake.messages_to(chat_id))
        self.fake.inject_message(chat_id, user_id, text)
        return (await self.fake.wait_for_messages(chat_id, before + count))[before:]

    async def say(self, chat_id: int, user_id: int, text: str) -> str:
        """One message in, the plain text of the one reply out."""
        (reply,) = await self.ask(chat_id, user_id, text)
        return str(reply["plain"])

    async def press(self, chat_id: int, user_id: int, data: str, message_id: int) -> JSON:
        """Press a button; returns the answerCallbackQuery parameters."""
        since = len(self.fake.calls)
        update = self.fake.inject_callback(chat_id, user_id, data, message_id)
        query_id = update["callback_query"]["id"]
        return await self.fake.wait_for_call(
            "answerCallbackQuery",
            predicate=lambda p: str(p.get("callback_query_id")) == query_id,
            since=since,
        )

    async def quiet(self, chat_id: int, user_id: int) -> None:
        """Proves earlier updates were handled without answer: a /help round trip."""
        before = len(self.fake.messages_to(chat_id))
        await self.ask(chat_id, user_id, "/help@" + self.fake.bot_username)
        await asyncio.sleep(0.05)
        assert len(self.fake.messages_to(chat_id)) == before + 1


def statement(
    n: int, region: str = "SYRIA", tags: str = "#Syria #War", body: str = ""
) -> Statement:
    text = (
        f"{region} - Statement number {n}\n\n"
        f"{body or f'Solidarity with the people, paragraph of statement {n}.'}\n\n{tags}"
    )
    return parse_statement(text, default_published_at=datetime(2024, 1, n, tzinfo=UTC))


async def seed(store: Store, extra: int = 6) -> None:
    """The sample statement (#1, Iran) and `extra` Syria statements (#2…)."""
    await store.statements.add(parse_file(SAMPLE), import_key="sample")
    for n in range(1, extra + 1):
        await store.statements.add(statement(n))


def config_for(fake: FakeTelegram, **overrides: Any) -> TelegramConfig:
    return TelegramConfig(token=fake.token, api_url=fake.base_url, poll_timeout=1, **overrides)


def services_for(store: Store) -> Services:
    return Services(
        store=store,
        admins=frozenset({f"telegram:{ADMIN}"}),
        page_size=3,
        throttle=Throttle(1000),
        pending=PendingActions(600.0),
    )


def world(fake: FakeTelegram) -> None:
    fake.user(USER, "Ann", "ann")
    fake.user(OTHER, "Bob", "bob")
    fake.user(ADMIN, "Boss", "boss")
    for user in (USER, OTHER, ADMIN):
        fake.add_chat(user, "private")
    fake.add_chat(GROUP, "supergroup", "Readers")
    fake.add_chat(CHANNEL, "channel", "News", username="news")
    fake.set_member(CHANNEL, USER, "creator")


@pytest_asyncio.fixture
async def bot(telegram_api: FakeTelegram, store: Store) -> AsyncIterator[Bot]:
    world(telegram_api)
    await seed(store)
    platform = TelegramPlatform(config_for(telegram_api), services_for(store))
    await platform.start()
    try:
        yield Bot(telegram_api, platform, store)
    finally:
        await platform.stop()
    assert not platform.connected


def buttons(message: JSON) -> list[list[tuple[str, str]]]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [[(b["text"], b["callback_data"]) for b in row] for row in rows]


# ------------------------------------------------------------------------------ basics


async def test_start_registers_command_menus(bot: Bot) -> None:
    fake = bot.fake
    assert bot.platform.connected and bot.platform.username == fake.bot_username
    everyone = [c["command"] for c in fake.commands_for()]
    assert {"start", "help", "latest", "subscribe"} <= set(everyone)
    assert "publish" not in everyone and "confirm" not in everyone
    admin = [c["command"] for c in fake.commands_for("chat", ADMIN)]
    assert {"latest", "publish", "announce", "stats", "status"} <= set(admin)
    assert "confirm" not in admin
    assert all(c["description"] for c in fake.commands_for("chat", ADMIN))
    poll = await fake.wait_for_call("getUpdates", predicate=lambda p: "allowed_updates" in p)
    assert set(poll["allowed_updates"]) == {
        "message",
        "channel_post",
        "callback_query",
        "inline_query",
        "my_chat_member",
    }


async def test_browse_commands_in_private_chat(bot: Bot) -> None:
    welcome = await bot.say(USER, USER, "/start")
    assert welcome.startswith(texts.WELCOME)
    help_text = await bot.say(USER, USER, "/help")
    assert "/latest" in help_text and "/publish" not in help_text

    (latest,) = await bot.ask(USER, USER, "/latest")
    assert latest["plain"].startswith(texts.LATEST_TITLE)
    assert latest["parse_mode"] == "HTML"
    assert latest["link_preview_options"] == {"is_disabled": True}
    rows = buttons(latest)
    # The sample (#1) is dated by its file's mtime, so it is the newest.
    assert rows[0] == [("Read #1", "show 1"), ("Read #7", "show 7"), ("Read #6", "show 6")]
    assert rows[1] == [(texts.BUTTON_NEXT, "latest page 2")]

    assert "Down with US drones" in await bot.say(USER, USER, "/tag iran")
    assert "Statement number" in await bot.say(USER, USER, "/region syria")
    assert "Down with US drones" in await bot.say(USER, USER, "/search drone")
    shown = await bot.say(USER, USER, "/show 1")
    assert shown.startswith("Down with US drones") and "Long live international" in shown
    tags = await bot.say(USER, USER, "/tags")
    assert "#Syria (6)" in tags and "#Iran (1)" in tags
    assert "Syria (6)" in await bot.say(USER, USER, "/regions")
    assert "/latest" in await bot.say(USER, USER, "/latets")  # did you mean


async def test_subscriptions_in_private_chat(bot: Bot) -> None:
    none = await bot.say(USER, USER, "/subscriptions")
    assert none == texts.NO_SUBSCRIPTIONS.format(p="/")
    assert await bot.say(USER, USER, "/subscribe") == texts.SUBSCRIBED.format(what=texts.WHAT_ALL)
    subscribed = await bot.say(USER, USER, "/subscribe tag Iran")
    assert subscribed.startswith(texts.SUBSCRIBED.format(what="new statements tagged #Iran"))
    listing = await bot.say(USER, USER, "/subscriptions")
    assert "every new statement" in listing and "#Iran" in listing
    gone = await bot.say(USER, USER, "/unsubscribe tag iran")
    assert gone == texts.UNSUBSCRIBED.format(what="new statements tagged #Iran")
    assert await bot.say(USER, USER, "/unsubscribe") == texts.UNSUBSCRIBED_ALL.format(count=1)
    chat = Chat("telegram", str(USER), ChatKind.PRIVATE)
    assert await bot.store.chats.for_chat(chat) == []


async def test_admin_commands_and_publish_with_confirm_button(bot: Bot) -> None:
    refused = await bot.say(USER, USER, "/publish IRAN - Title\n\nText.\n\n#Iran")
    assert refused == texts.NOT_ADMIN.format(p="/", name="publish")
    assert await bot.say(USER, USER, "/stats") == texts.NOT_ADMIN.format(p="/", name="stats")
    assert (await bot.say(ADMIN, ADMIN, "/stats")).startswith(texts.STATS_TITLE)
    assert "/publish" in await bot.say(ADMIN, ADMIN, "/help")
    await bot.say(USER, USER, "/subscribe tag Peace")  # unknown tag: refused, nothing changes
    await bot.say(OTHER, OTHER, "/subscribe")

    text = (
        "/publish SYRIA - A new statement about peace\n\n"
        "First paragraph of the new statement.\n\nSecond paragraph.\n\n#Syria #Peace"
    )
    preview, shown, confirm = await bot.ask(ADMIN, ADMIN, text, count=3)
    assert preview["plain"] == texts.PUBLISH_PREVIEW
    assert shown["plain"].startswith("A new statement about peace")
    assert "It will go to 1 chats" in confirm["plain"]
    ((ok_label, ok_data), (_, cancel_data)) = buttons(confirm)[0]
    assert ok_label == texts.CONFIRM_BUTTON and ok_data.startswith("confirm ")
    assert cancel_data.startswith("cancel ")

    # Someone else pressing the admin's button is refused; the admin's press publishes.
    sent = len(bot.fake.messages_to(ADMIN))
    await bot.press(ADMIN, USER, ok_data, confirm["message_id"])
    refused = (await bot.fake.wait_for_messages(ADMIN, sent + 1))[-1]
    assert refused["plain"] == texts.NOT_ADMIN.format(p="/", name="confirm")
    assert not [name for name, _ in bot.fake.calls if name == "editMessageReplyMarkup"]
    count = await bot.store.statements.count()
    answered = await bot.press(ADMIN, ADMIN, ok_data, confirm["message_id"])
    assert "text" not in answered
    done = (await bot.fake.wait_for_messages(ADMIN, sent + 2))[-1]
    assert done["plain"] == texts.CONFIRMED_STATEMENT.format(id=count + 1, count=1)
    assert await bot.store.statements.count() == count + 1
    latest = await bot.store.statements.latest(1)
    assert latest[0].title == "A new statement about peace"
    # The keyboard is gone, so the button cannot be pressed twice.
    await bot.fake.wait_for_call(
        "editMessageReplyMarkup", predicate=lambda p: p["message_id"] == confirm["message_id"]
    )
    assert (await bot.say(ADMIN, ADMIN, "/status")).startswith(texts.STATUS_TITLE)


async def test_commands_in_groups_by_mention(bot: Bot) -> None:
    (reply,) = await bot.ask(GROUP, USER, "/latest@StatementTestBot")
    assert reply["plain"].startswith(texts.LATEST_TITLE) and reply["chat_id"] == GROUP
    bot.fake.inject_message(GROUP, USER, "/latest@OtherBot")
    bot.fake.inject_message(GROUP, USER, "/othercommand for another bot")
    bot.fake.inject_message(GROUP, USER, "just chatting")
    await bot.quiet(GROUP, USER)


async def test_private_text_gets_a_hint(bot: Bot) -> None:
    assert await bot.say(USER, USER, "hello?") == texts.TG_NOT_A_COMMAND.format(p="/")


# ------------------------------------------------------------------------- buttons


async def test_next_edits_the_list_in_place_and_read_shows_a_statement(bot: Bot) -> None:
    (page1,) = await bot.ask(USER, USER, "/latest")
    since = len(bot.fake.calls)
    await bot.press(USER, USER, "latest page 2", page1["message_id"])
    edit = await bot.fake.wait_for_call("editMessageText", since=since)
    assert edit["message_id"] == page1["message_id"]
    edited = bot.fake.sent[-1]
    assert edited["method"] == "editMessageText"
    assert "page 2" in edited["plain"] and "Statement number 4" in edited["plain"]
    assert [label for label, _ in buttons(edit)[1]] == [texts.BUTTON_PREVIOUS, texts.BUTTON_NEXT]
    assert len(bot.fake.messages_to(USER)) == 1  # no new message

    await bot.press(USER, USER, "show 4", page1["message_id"])
    shown = (await bot.fake.wait_for_messages(USER, 2))[-1]
    assert shown["plain"].startswith("Statement number 3")


async def test_forged_and_stale_buttons_get_a_polite_answer(bot: Bot) -> None:
    (page1,) = await bot.ask(USER, USER, "/latest")
    for data in ("~notatoken", "rm -rf /", "nosuchcommand 1", "~"):
        answered = await bot.press(USER, USER, data, page1["message_id"])
        assert answered["text"] == texts.TG_STALE_BUTTON
    # A valid command on a message Telegram no longer shows still works.
    answered = await bot.press(USER, USER, "show 1", 999)
    assert "text" not in answered
    await bot.fake.wait_for_messages(USER, 2)
    assert not [e for e in bot.fake.errors if e["method"] != "answerCallbackQuery"]


async def test_long_button_commands_use_tokens(bot: Bot) -> None:
    words = " ".join(["solidarity"] * 7)
    (page1,) = await bot.ask(USER, USER, f"/search {words}")
    ((_, next_data),) = buttons(page1)[1]
    assert next_data.startswith("~") and len(next_data.encode()) <= 64
    since = len(bot.fake.calls)
    await bot.press(USER, USER, next_data, page1["message_id"])
    await bot.fake.wait_for_call("editMessageText", since=since)
    assert "page 2" in bot.fake.sent[-1]["plain"]


async def test_deep_links(bot: Bot) -> None:
    assert "Down with US drones" in await bot.say(USER, USER, "/start tag_iran")
    assert (await bot.say(USER, USER, "/start region_syria")).startswith("Statements about Syria")
    assert (await bot.say(USER, USER, "/start s_2")).startswith("Statement number 1")


# ---------------------------------------------------------------------- inline mode


async def test_inline_query_offers_statements(bot: Bot) -> None:
    bot.fake.inject_inline_query(USER, "drones")
    found = await bot.fake.wait_for_call("answerInlineQuery")
    assert found["cache_time"] == 300 and found["is_personal"] is False
    (result,) = found["results"]
    assert (
        result["id"] == "1" and result["title"] == "Down with US drones, down with US imperialism!"
    )
    assert result["description"] == "Iran · #Iran #USdrones #imperialistwar"
    content = result["input_message_content"]
    plain, entities = parse_html(content["message_text"])
    assert len(plain) <= TELEGRAM_LIMIT and plain.endswith(texts.TG_INLINE_OPEN)
    link = f"https://t.me/{bot.fake.bot_username}?start=s_1"
    assert entities[-1]["url"] == link

    bot.fake.inject_inline_query(USER, "")
    latest = await bot.fake.wait_for_call(
        "answerInlineQuery", predicate=lambda p: len(p["results"]) > 1
    )
    assert [r["id"] for r in latest["results"]] == ["1", "7", "6", "5", "4", "3", "2"]


async def test_inline_result_of_a_long_statement_is_truncated(bot: Bot) -> None:
    body = "\n\n".join(f"Section {i} " + "longword " * 100 for i in range(20))
    added = await bot.store.statements.add(statement(20, body=body, tags="#Long"))
    bot.fake.inject_inline_query(USER, "longword")
    found = await bot.fake.wait_for_call("answerInlineQuery")
    (result,) = found["results"]
    assert result["id"] == str(added.statement.id)
    plain, _ = parse_html(result["input_message_content"]["message_text"])
    assert len(plain) <= TELEGRAM_LIMIT
    assert f"{texts.TG_INLINE_TRUNCATED}\n\n{texts.TG_INLINE_OPEN}" in plain


# ---------------------------------------------------------------- channels and groups


async def test_channel_subscription_from_a_private_chat(bot: Bot) -> None:
    fake = bot.fake
    channel = Chat("telegram", str(CHANNEL), ChatKind.CHANNEL)
    reply = await bot.say(USER, USER, "/subscribe @news")
    assert reply == texts.SUBSCRIBED_OTHER.format(title="News", what=texts.WHAT_ALL)
    (sub,) = await bot.store.chats.for_chat(channel)
    assert sub.chat.kind is ChatKind.CHANNEL and sub.chat.title == "News"
    assert sub.created_by == f"telegram:{USER}"
    tagged = await bot.say(USER, USER, f"/subscribe {CHANNEL} tag iran")
    assert tagged == texts.SUBSCRIBED_OTHER.format(title="News", what="new statements tagged #Iran")
    assert "#Iran" in await bot.say(USER, USER, "/subscriptions @news")

    # Each refusal names the check that failed.
    refusal = await bot.say(OTHER, OTHER, "/subscribe @news")
    assert refusal == texts.TG_SENDER_NOT_ADMIN.format(title="News")
    fake.set_member(CHANNEL, OTHER, "administrator")
    assert "already receives" in await bot.say(OTHER, OTHER, "/subscribe @news")

    cannot_post = texts.TG_BOT_CANNOT_POST.format(title="News", bot=fake.bot_username)
    fake.set_member(CHANNEL, fake.bot_id, "administrator", can_post_messages=False)
    assert await bot.say(USER, USER, "/unsubscribe @news") == cannot_post
    fake.set_member(CHANNEL, fake.bot_id, "left")
    assert await bot.say(USER, USER, "/subscribe @news") == cannot_post
    assert "'Post messages'" in cannot_post

    unknown = await bot.say(USER, USER, "/subscribe @nosuchchannel")
    assert unknown == texts.TG_CHAT_NOT_FOUND.format(ref="@nosuchchannel")
    person = await bot.say(USER, USER, f"/subscribe -{OTHER}")
    assert person == texts.TG_CHAT_NOT_FOUND.format(ref=f"-{OTHER}")
    assert len(await bot.store.chats.for_chat(channel)) == 2


async def test_forwarded_channel_post_subscribes_the_channel(bot: Bot) -> None:
    fake = bot.fake
    fake.add_chat(-1005555, "channel", "Bulletin")
    fake.set_member(-1005555, USER, "administrator")
    before = len(fake.messages_to(USER))
    fake.inject_message(USER, USER, "a post", forward_from_chat_id=-1005555)
    (reply,) = (await fake.wait_for_messages(USER, before + 1))[before:]
    assert reply["plain"] == texts.SUBSCRIBED_OTHER.format(title="Bulletin", what=texts.WHAT_ALL)
    channel = Chat("telegram", "-1005555", ChatKind.CHANNEL)
    assert len(await bot.store.chats.for_chat(channel)) == 1
    # Forwarded by someone who is not its admin: refused.
    fake.inject_message(OTHER, OTHER, "a post", forward_from_chat_id=-1005555)
    (refusal,) = await fake.wait_for_messages(OTHER)
    assert refusal["plain"] == texts.TG_SENDER_NOT_ADMIN.format(title="Bulletin")


async def test_command_posted_in_a_channel(bot: Bot) -> None:
    bot.fake.inject_channel_post(CHANNEL, "/subscribe tag Syria")
    (reply,) = await bot.fake.wait_for_messages(CHANNEL)
    assert reply["plain"].startswith(texts.SUBSCRIBED.format(what="new statements tagged #Syria"))
    (sub,) = await bot.store.chats.for_chat(Chat("telegram", str(CHANNEL), ChatKind.CHANNEL))
    assert sub.created_by == f"telegram:{CHANNEL}"


async def test_group_subscription_needs_a_group_admin(bot: Bot) -> None:
    fake = bot.fake
    fake.set_member(GROUP, OTHER, "member")
    assert await bot.say(GROUP, OTHER, "/subscribe") == texts.NOT_CHAT_ADMIN
    fake.set_member(GROUP, USER, "administrator")
    assert await bot.say(GROUP, USER, "/subscribe") == texts.SUBSCRIBED.format(what=texts.WHAT_ALL)
    # Bot admins may, and so may the group's anonymous admins (sender_chat = the group).
    assert "receives" in await bot.say(GROUP, ADMIN, "/subscribe tag iran")
    group = Chat("telegram", str(GROUP), ChatKind.GROUP)
    assert await bot.platform.sender_is_chat_admin(group, User("telegram", str(GROUP)))
    assert not await bot.platform.sender_is_chat_admin(group, User("telegram", str(CHANNEL)))
    assert len(await bot.store.chats.for_chat(group)) == 2


async def test_removed_or_blocked_deactivates_subscriptions(bot: Bot) -> None:
    fake = bot.fake
    fake.set_member(GROUP, USER, "administrator")
    await bot.say(GROUP, USER, "/subscribe")
    await bot.say(USER, USER, "/subscribe")
    group = Chat("telegram", str(GROUP), ChatKind.GROUP)
    private = Chat("telegram", str(USER), ChatKind.PRIVATE)

    fake.inject_my_chat_member(GROUP, USER, "member", "kicked")
    fake.inject_my_chat_member(USER, USER, "member", "kicked")

    async def both_gone() -> bool:
        return not await bot.store.chats.for_chat(group) and not await bot.store.chats.for_chat(
            private
        )

    await eventually(both_gone)
    found = await bot.store.chats.get("telegram", str(GROUP))
    assert found is not None and found[1] is False

    fake.inject_my_chat_member(CHANNEL, USER, "left", "administrator")

    async def channel_known() -> bool:
        found = await bot.store.chats.get("telegram", str(CHANNEL))
        return found is not None and found[1] and found[0].kind is ChatKind.CHANNEL

    await eventually(channel_known)


async def test_group_migration_moves_the_chat(bot: Bot) -> None:
    fake = bot.fake
    old, new = -4001, -1004001
    fake.add_chat(old, "group", "Small group")
    fake.set_member(old, USER, "creator")
    await bot.say(old, USER, "/subscribe")
    fake.migrate_group(old, new)
    fake._enqueue(  # the service message Telegram posts in the old group
        "message",
        {
            "message_id": 500,
            "from": fake._user_obj(USER),
            "chat": fake._chat_obj(old),
            "date": int(time.time()),
            "migrate_to_chat_id": new,
        },
    )

    async def moved() -> bool:
        return len(await bot.store.chats.for_chat(Chat("telegram", str(new), ChatKind.GROUP))) == 1

    await eventually(moved)
    assert await bot.store.chats.get("telegram", str(old)) is None


# ------------------------------------------------------------------------ rendering


async def test_hostile_text_arrives_escaped(bot: Bot) -> None:
    hostile = "<script>alert(1)</script> & <b>"
    text = f"IRAN - Title {hostile}\n\nBody {hostile} here.\n\n#Hostile"
    added = await bot.store.statements.add(parse_statement(text))
    st = await bot.store.statements.get(added.statement.id or 0)
    assert st is not None and st.title == f"Title {hostile}"
    (shown,) = await bot.ask(USER, USER, f"/show {st.id}")
    assert shown["plain"] == full(st).plain
    assert shown["plain"].startswith(f"Title {hostile}\n\n")
    assert f"\n\nBody {hostile} here." in shown["plain"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in shown["text"]


async def test_long_statement_is_split_at_paragraphs(bot: Bot) -> None:
    body = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(21))
    added = await bot.store.statements.add(statement(22, body=body, tags="#Long"))
    st = added.statement
    assert len(full(st).plain) > 10_000
    parts = await bot.ask(USER, USER, f"/show {st.id}", count=3)
    await asyncio.sleep(0.05)
    assert len(bot.fake.messages_to(USER)) == 3
    assert all(len(p["plain"]) <= TELEGRAM_LIMIT for p in parts)
    # Rejoined at blank lines they give back the whole text: every cut was between paragraphs.
    assert "\n\n".join(p["plain"] for p in parts) == full(st).plain


# --------------------------------------------------------------------- send outcomes


def short_reply(text: str = "Hello") -> Reply:
    return Reply((Paragraph((Span(text),)),))


def long_reply() -> Reply:
    return Reply(tuple(Paragraph((Span(f"{i} " + "x" * 1500),)) for i in range(6)))


@pytest.mark.parametrize(
    ("error_code", "description", "parameters", "expected"),
    [
        (429, "Too Many Requests: retry after 3", {"retry_after": 3}, RetryAfter(3.0)),
        (
            403,
            "Forbidden: bot was blocked by the user",
            None,
            Gone("Forbidden: bot was blocked by the user"),
        ),
        (
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": -1007777},
            Moved("-1007777"),
        ),
        (400, "Bad Request: chat not found", None, Gone("Chat not found")),
        (
            400,
            "Bad Request: need administrator rights in the channel chat",
            None,
            Gone("Need administrator rights in the channel chat"),
        ),
        (500, "Internal Server Error", None, Transient("Internal Server Error")),
        (400, "Bad Request: something unexpected", None, Permanent("Something unexpected")),
    ],
)
async def test_send_outcomes(
    bot: Bot, error_code: int, description: str, parameters: JSON | None, expected: object
) -> None:
    chat = Chat("telegram", str(USER), ChatKind.PRIVATE)
    bot.fake.fail_next(
        "sendMessage", error_code=error_code, description=description, parameters=parameters
    )
    assert await bot.platform.send(chat, short_reply()) == expected
    assert await bot.platform.send(chat, short_reply()) == Sent(
        str(bot.fake.messages_to(USER)[-1]["message_id"])
    )


async def test_one_encoded_reply_reaches_each_chat_intact(bot: Bot) -> None:
    """A reply is form-encoded once and only the chat id added per chat: every character
    must survive that, and each chat must get its own copy."""
    text = "1+1=2 & 100% «ура» 🚀 a/b?c#d;e"
    reply = short_reply(text)
    chats = [
        Chat("telegram", str(USER), ChatKind.PRIVATE),
        Chat("telegram", str(GROUP), ChatKind.GROUP),
    ]
    outcomes = [await bot.platform.send(chat, reply) for chat in chats]
    got = [bot.fake.messages_to(USER)[-1], bot.fake.messages_to(GROUP)[-1]]
    assert [m["text"] for m in got] == [text.replace("&", "&amp;")] * 2
    assert outcomes == [Sent(str(m["message_id"])) for m in got]


async def test_send_waits_out_a_flood_limit_between_parts(bot: Bot) -> None:
    fake = bot.fake
    fake.enforce_limits = True
    started = time.monotonic()
    outcome = await bot.platform.send_direct(str(USER), long_reply())
    assert 0.9 < time.monotonic() - started < 10
    parts = fake.messages_to(USER)
    assert outcome == Sent(str(parts[0]["message_id"])) and len(parts) == 3
    assert fake.too_many_requests >= 2

    # A flood wait longer than allowed: the first part counts as delivered.
    fake.limits["group_per_min"] = 1
    bot.platform.max_part_wait = 0.5
    group = Chat("telegram", str(GROUP), ChatKind.GROUP)
    outcome = await bot.platform.send(group, long_reply())
    assert outcome == Sent(str(fake.messages_to(GROUP)[0]["message_id"]))
    assert len(fake.messages_to(GROUP)) == 1


async def test_rates_and_paid_broadcast(telegram_api: FakeTelegram, store: Store) -> None:
    world(telegram_api)
    rates = TelegramRates(global_per_second=25, group_per_minute=15, private_per_second=2)
    platform = TelegramPlatform(config_for(telegram_api, rates=rates), services_for(store))
    group = Chat("telegram", str(GROUP), ChatKind.GROUP)
    private = Chat("telegram", str(USER), ChatKind.PRIVATE)
    assert platform.global_rate() == 25
    assert platform.chat_interval(group) == 4.0 and platform.chat_interval(private) == 0.5
    rates.paid_broadcast = True
    assert platform.global_rate() == rates.paid_per_second
    await platform.start()
    try:
        assert isinstance(await platform.send(private, short_reply()), Sent)
    finally:
        await platform.stop()
    assert telegram_api.messages_to(USER)[0]["allow_paid_broadcast"] is True


async def test_source_link_preview_on_first_part_only(bot: Bot) -> None:
    st = replace(statement(23, body="See the source."), source="https://ex.org/s")
    added = await bot.store.statements.add(st)
    (shown,) = await bot.ask(USER, USER, f"/show {added.statement.id}")
    assert shown["link_preview_options"] == {"url": "https://ex.org/s"}


# ------------------------------------------------------------------ errors, webhook


async def test_error_handler_logs_update_and_chat(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="bot.platforms.telegram")
    bot.fake.fail_next("answerInlineQuery", error_code=500, description="Internal Server Error")
    update = bot.fake.inject_inline_query(USER, "iran")
    await eventually(lambda: [r for r in caplog.records if "failed" in r.getMessage()])
    (record,) = [r for r in caplog.records if "failed" in r.getMessage()]
    assert f"update {update['update_id']}" in record.getMessage()
    assert bot.fake.token not in caplog.text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode(telegram_api: FakeTelegram, store: Store) -> None:
    pytest.importorskip("tornado")
    world(telegram_api)
    await seed(store, extra=0)
    port = free_port()
    config = config_for(
        telegram_api,
        mode="webhook",
        webhook_url="https://bot.example.org/tg-hook",
        webhook_listen="127.0.0.1",
        webhook_port=port,
        webhook_secret="s3cret-Token",
    )
    platform = TelegramPlatform(config, services_for(store))
    await platform.start()
    try:
        registered = await telegram_api.wait_for_call("setWebhook")
        assert registered["url"] == "https://bot.example.org/tg-hook"
        assert registered["secret_token"] == "s3cret-Token"
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": USER, "type": "private", "first_name": "Ann"},
                "from": {"id": USER, "is_bot": False, "first_name": "Ann"},
                "text": "/show 1",
                "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
            },
        }
        url = f"http://127.0.0.1:{port}/tg-hook"
        async with aiohttp.ClientSession() as http:
            headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 403
            headers = {"X-Telegram-Bot-Api-Secret-Token": "s3cret-Token"}
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 200
        (shown,) = await telegram_api.wait_for_messages(USER)
        assert shown["plain"].startswith("Down with US drones")
    finally:
        await platform.stop()
