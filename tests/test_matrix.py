"""The Matrix adapter against a real Synapse, with matrix-nio playing the humans.

Each test registers fresh users on the session's homeserver, runs a `MatrixPlatform` on a
fresh store, and talks to it the way a person in Element would: invites, commands, power
levels, an encrypted room. Waits poll for the expected event; nothing sleeps blindly.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from matrix_helpers import Human, unique
from nio import MegolmEvent, RoomMemberEvent, RoomMessageNotice, RoomPreset
from polling import eventually
from synapse import RegisteredUser, Synapse

from bot import texts
from bot.config import MatrixConfig
from bot.model import ChatKind, Gone, Reply, RetryAfter, Sent
from bot.platforms.matrix import MatrixPlatform
from bot.statements import parse_file, parse_statement
from bot.store import Store
from bot.views import reply
from handlers.context import PendingActions, Services, Throttle

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "statements" / "iran-down-with-us-drones.txt"
HOSTILE = (
    "IRAN - <script>alert(1)</script> & co\n\n"
    'A paragraph with <b>bold</b> & <a href="https://evil.example">a link</a>.\n\n'
    "#Hostile"
)

StartBot = Callable[..., Awaitable[MatrixPlatform]]
NewHuman = Callable[..., Awaitable[Human]]


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
def admin_user(synapse_server: Synapse) -> RegisteredUser:
    return synapse_server.register(unique("admin"))


@pytest.fixture
def bot_user(synapse_server: Synapse) -> RegisteredUser:
    return synapse_server.register(unique("statementbot"))


@pytest_asyncio.fixture
async def statements(store: Store) -> dict[str, int]:
    """The sample statement and a hostile one; their ids by name."""
    sample = await store.statements.add(parse_file(SAMPLE), import_key="sample")
    hostile = await store.statements.add(parse_statement(HOSTILE), import_key="hostile")
    return {"sample": _id(sample), "hostile": _id(hostile)}


def _id(result: Any) -> int:
    statement = getattr(result, "statement", None)
    value = getattr(statement, "id", None) or getattr(result, "id", None)
    assert isinstance(value, int), result
    return value


@pytest.fixture
def matrix_services(store: Store, admin_user: RegisteredUser) -> Services:
    return Services(
        store=store,
        admins=frozenset({f"matrix:{admin_user.user_id}"}),
        page_size=5,
        throttle=Throttle(1000),
        pending=PendingActions(600.0),
    )


@pytest_asyncio.fixture
async def start_bot(
    synapse_server: Synapse, matrix_services: Services, tmp_path: Path
) -> AsyncIterator[StartBot]:
    """Start MatrixPlatforms (stopped at the end); by default with the bot's access token."""
    started: list[MatrixPlatform] = []

    async def start(
        user: RegisteredUser,
        *,
        password: bool = False,
        allowed: tuple[str, ...] = (),
        server: Synapse = synapse_server,
    ) -> MatrixPlatform:
        config = MatrixConfig(
            homeserver=server.url,
            user_id=user.user_id,
            access_token="" if password else user.access_token,
            password=user.password if password else "",
            allowed_servers=list(allowed),
        )
        platform = MatrixPlatform(config, matrix_services, str(tmp_path / "bot.db"))
        await platform.start()
        started.append(platform)
        return platform

    yield start
    for platform in started:
        await platform.stop()


@pytest_asyncio.fixture
async def new_human(synapse_server: Synapse, tmp_path: Path) -> AsyncIterator[NewHuman]:
    made: list[Human] = []

    async def make(name: str, *, server: Synapse = synapse_server, e2e: bool = False) -> Human:
        user = server.register(unique(name))
        store = tmp_path / f"e2e-{user.localpart}" if e2e else None
        human = await Human.create(server, user, e2e_store=store)
        made.append(human)
        return human

    yield make
    for human in made:
        await human.client.close()


async def room_with_bot(human: Human, bot: str, *others: Human, **kw: Any) -> str:
    """A room created by `human`, the bot invited (it joins and says hello), others joined."""
    room_id = await human.create_room([bot, *(o.user_id for o in others)], **kw)
    for other in others:
        await other.join(room_id)
    await human.until(lambda: human.notices(room_id, bot))  # the welcome: joined and synced
    return room_id


# ------------------------------------------------------------------------------- tests


async def test_invite_from_allowed_server_joins_and_welcomes(
    start_bot: StartBot, new_human: NewHuman, bot_user: RegisteredUser
) -> None:
    await start_bot(bot_user)
    alice = await new_human("alice")
    room_id = await alice.create_room([bot_user.user_id])
    welcome = await alice.until(lambda: alice.notices(room_id, bot_user.user_id))
    assert texts.WELCOME in welcome[0].body
    assert bot_user.user_id in alice.client.rooms[room_id].users


async def test_invite_from_other_server_is_declined(
    start_bot: StartBot, new_human: NewHuman, bot_user: RegisteredUser
) -> None:
    await start_bot(bot_user, allowed=("other.example",))
    alice = await new_human("alice")
    room_id = await alice.create_room([bot_user.user_id])

    def declined() -> bool:
        return any(
            isinstance(e, RoomMemberEvent)
            and e.state_key == bot_user.user_id
            and e.membership == "leave"
            for e in alice.events.get(room_id, [])
        )

    await alice.until(declined)
    assert bot_user.user_id not in alice.client.rooms[room_id].users


async def test_every_command_is_answered_as_an_html_notice(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    statements: dict[str, int],
) -> None:
    await start_bot(bot_user)
    alice, carol = await new_human("alice"), await new_human("carol")
    bot = bot_user.user_id
    room_id = await room_with_bot(alice, bot, carol)

    expected = {
        "!latest": texts.LATEST_TITLE,
        "!tag iran": texts.TAG_TITLE.format(tag="Iran"),
        "!region iran": texts.REGION_TITLE.format(region="Iran"),
        "!search drones": "Down with US drones",
        f"!show {statements['sample']}": "Long live international solidarity!",
        "!tags": texts.TAGS_TITLE,
        "!regions": texts.REGIONS_TITLE,
        "!help": "!subscribe",
        "!frobnicate": "I don't know the command !frobnicate",
        # Addressed by name (localpart), by display name with a pill, with the prefix too.
        f"{bot_user.localpart}: latest": texts.LATEST_TITLE,
        f"{bot_user.localpart}, !tags": texts.TAGS_TITLE,
    }
    asked = {text: await alice.say(room_id, text) for text in expected}
    pill = (
        f'<a href="https://matrix.to/#/{bot}">Statement Bot</a>: regions',
        "Statement Bot: regions",
    )
    pill_id = await alice.say(
        room_id, pill[1], format="org.matrix.custom.html", formatted_body=pill[0]
    )
    chatter_id = await alice.say(room_id, "latest news, anyone?")  # not for the bot

    for text, event_id in asked.items():
        answer = await alice.reply_to(room_id, bot, event_id)
        content = answer.source["content"]
        assert content["msgtype"] == "m.notice", text
        assert content["format"] == "org.matrix.custom.html", text
        assert content["formatted_body"].startswith("<p>"), text
        assert expected[text] in answer.body, (text, answer.body)
        assert content["m.mentions"] == {}
    assert texts.REGIONS_TITLE in (await alice.reply_to(room_id, bot, pill_id)).body

    # Buttons become command hints in both forms.
    latest = alice.replies(room_id, bot, asked["!latest"])[0]
    assert "!show" in latest.body and "!show" in latest.source["content"]["formatted_body"]

    # A command in a thread is answered in that thread.
    root = asked["!tags"]
    thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
    in_thread = await alice.ask(room_id, bot, "!regions", **thread)
    relates = in_thread.source["content"]["m.relates_to"]
    assert relates["rel_type"] == "m.thread" and relates["event_id"] == root

    # Plain words in a group room are not commands; a marker proves the bot has read past.
    await alice.ask(room_id, bot, "!help")
    assert alice.replies(room_id, bot, chatter_id) == []


async def test_direct_room_takes_plain_commands_and_anyone_subscribes(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    statements: dict[str, int],
    store: Store,
) -> None:
    await start_bot(bot_user)
    bob = await new_human("bob")
    bot = bot_user.user_id
    room_id = await room_with_bot(bob, bot, is_direct=True)

    assert texts.LATEST_TITLE in (await bob.ask(room_id, bot, "latest")).body
    subscribed = await bob.ask(room_id, bot, "subscribe tag iran")
    assert subscribed.body == texts.SUBSCRIBED.format(what=texts.WHAT_TAG.format(name="Iran"))
    chat, active = await store.chats.get("matrix", room_id) or (None, False)
    assert chat is not None and active and chat.kind is ChatKind.PRIVATE


async def test_subscribe_in_a_room_needs_power_or_bot_admin(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    admin_user: RegisteredUser,
    statements: dict[str, int],
    store: Store,
    synapse_server: Synapse,
) -> None:
    await start_bot(bot_user)
    bot = bot_user.user_id
    alice, carol = await new_human("alice"), await new_human("carol")
    admin = await Human.create(synapse_server, admin_user)
    try:
        room_id = await room_with_bot(alice, bot, carol, admin)

        refused = await carol.ask(room_id, bot, "!subscribe")
        assert refused.body == texts.NOT_CHAT_ADMIN

        await alice.set_power(room_id, carol.user_id, 50)
        allowed = await carol.ask(room_id, bot, "!subscribe tag iran")
        assert allowed.body.startswith("Subscribed"), allowed.body

        by_admin = await admin.ask(room_id, bot, "!subscribe region iran")  # level 0, bot admin
        assert by_admin.body.startswith("Subscribed"), by_admin.body

        by_creator = await alice.ask(room_id, bot, "!subscribe")  # room v12 creator
        assert by_creator.body.startswith("Subscribed"), by_creator.body

        chat, _ = await store.chats.get("matrix", room_id) or (None, False)
        assert chat is not None and chat.kind is ChatKind.ROOM
        kinds = sorted(s.filter.kind.value for s in await store.chats.for_chat(chat))
        assert kinds == ["all", "region", "tag"]
    finally:
        await admin.client.close()


async def test_restart_neither_replays_nor_misses(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    statements: dict[str, int],
    synapse_server: Synapse,
) -> None:
    bot = bot_user.user_id
    alice, carol = await new_human("alice"), await new_human("carol")

    # Before the bot ever ran: it is already in a room where someone asked something.
    bot_as_human = await Human.create(synapse_server, bot_user)
    try:
        room_id = await alice.create_room([bot, carol.user_id])
        await carol.join(room_id)
        await bot_as_human.join(room_id)
    finally:
        await bot_as_human.client.close()
    history = await alice.say(room_id, "!tags")

    first = await start_bot(bot_user)
    answered = await alice.ask(room_id, bot, "!latest")
    assert texts.LATEST_TITLE in answered.body
    old = answered.source["content"]["m.relates_to"]["m.in_reply_to"]["event_id"]
    await first.stop()

    while_down = await alice.say(room_id, "!regions")
    await start_bot(bot_user)
    assert texts.REGIONS_TITLE in (await alice.reply_to(room_id, bot, while_down)).body
    marker = await alice.ask(room_id, bot, "!help")
    assert marker.body

    assert alice.replies(room_id, bot, history) == [], "first start must ignore history"
    assert len(alice.replies(room_id, bot, old)) == 1, "restart must not replay"
    assert len(alice.replies(room_id, bot, while_down)) == 1


async def test_password_login_is_saved_and_reused(
    start_bot: StartBot,
    bot_user: RegisteredUser,
    store: Store,
) -> None:
    first = await start_bot(bot_user, password=True)
    assert first.client is not None
    device = first.client.device_id
    assert device and device != bot_user.device_id  # a new device from the login
    key = f"matrix.access_token.{bot_user.user_id}"
    saved_token = await store.settings.get(key)
    assert saved_token and saved_token == first.client.access_token
    assert await store.settings.get(f"matrix.device_id.{bot_user.user_id}") == device
    devices_before = await first.client.devices()
    await first.stop()

    second = await start_bot(bot_user, password=True)
    assert second.client is not None
    assert second.client.device_id == device
    assert second.client.access_token == saved_token
    devices_after = await second.client.devices()
    assert len(devices_after.devices) == len(devices_before.devices)  # type: ignore[union-attr]


async def test_encrypted_room_round_trip(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    statements: dict[str, int],
) -> None:
    bot = bot_user.user_id
    await start_bot(bot_user)
    alice = await new_human("alice", e2e=True)
    carol = await new_human("carol", e2e=True)
    room_id = await alice.create_room([bot, carol.user_id], encrypted=True)
    await carol.join(room_id)

    def bot_joined() -> bool:
        room = alice.client.rooms.get(room_id)
        return bool(room) and room.encrypted and bot in room.users and bot not in room.invited_users

    await alice.until(bot_joined)
    asked = await alice.say(room_id, "!latest")
    answer = await alice.reply_to(room_id, bot, asked, within=20)
    assert not isinstance(answer, MegolmEvent)
    assert isinstance(answer, RoomMessageNotice) and answer.decrypted
    assert texts.LATEST_TITLE in answer.body
    # On the wire it is encrypted (nio's own room_get_event would decrypt it).
    path = f"/_matrix/client/v3/rooms/{room_id}/event/{answer.event_id}"
    headers = {"Authorization": f"Bearer {alice.client.access_token}"}
    raw = await alice.client.send("GET", path, headers=headers)
    assert (await raw.json())["type"] == "m.room.encrypted"


async def test_hostile_statement_text_arrives_as_text(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    statements: dict[str, int],
) -> None:
    await start_bot(bot_user)
    bob = await new_human("bob")
    bot = bot_user.user_id
    room_id = await room_with_bot(bob, bot)
    shown = await bob.ask(room_id, bot, f"!show {statements['hostile']}")
    formatted = shown.source["content"]["formatted_body"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in formatted
    assert "<script>" not in formatted and "<b>bold</b>" not in formatted
    assert "&lt;a href=" in formatted and '<a href="https://evil.example"' not in formatted
    assert "<script>alert(1)</script> & co" in shown.body


async def test_kicked_room_is_gone_and_deactivated(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    statements: dict[str, int],
    store: Store,
) -> None:
    platform = await start_bot(bot_user)
    bot = bot_user.user_id
    alice, carol = await new_human("alice"), await new_human("carol")
    room_id = await room_with_bot(alice, bot, carol)
    assert (await alice.ask(room_id, bot, "!subscribe")).body.startswith("Subscribed")
    chat, _ = await store.chats.get("matrix", room_id) or (None, False)
    assert chat is not None

    await alice.client.room_kick(room_id, bot, reason="too chatty")

    async def deactivated() -> bool:
        known = await store.chats.get("matrix", room_id)
        return known is not None and not known[1]

    await eventually(deactivated, timeout=15)
    assert await store.chats.for_chat(chat) == []
    outcome = await platform.send(chat, reply("anyone there?"))
    assert isinstance(outcome, Gone), outcome


async def test_leaves_a_room_where_it_is_alone(
    start_bot: StartBot, new_human: NewHuman, bot_user: RegisteredUser
) -> None:
    platform = await start_bot(bot_user)
    assert platform.client is not None
    alice = await new_human("alice")
    room_id = await room_with_bot(alice, bot_user.user_id)
    await alice.client.room_leave(room_id)

    async def bot_left() -> bool:
        joined = await platform.client.joined_rooms()  # type: ignore[union-attr]
        return room_id not in joined.rooms  # type: ignore[union-attr]

    await eventually(bot_left, timeout=15, step=0.2)


async def test_send_direct_opens_a_dm(
    start_bot: StartBot, new_human: NewHuman, bot_user: RegisteredUser
) -> None:
    platform = await start_bot(bot_user)
    dave = await new_human("dave")
    outcome = await platform.send_direct(dave.user_id, reply("Broadcast finished."))
    assert isinstance(outcome, Sent), outcome
    room_id = await dave.until(lambda: next(iter(dave.client.invited_rooms), None))
    await dave.join(room_id)
    notice = await dave.until(lambda: dave.notices(room_id, bot_user.user_id))
    assert notice[0].body == "Broadcast finished."
    again = await platform.send_direct(dave.user_id, reply("Second report."))
    assert isinstance(again, Sent)
    await dave.until(lambda: len(dave.notices(room_id, bot_user.user_id)) == 2)


async def test_room_upgrade_keeps_subscriptions(
    start_bot: StartBot,
    new_human: NewHuman,
    bot_user: RegisteredUser,
    statements: dict[str, int],
    store: Store,
) -> None:
    await start_bot(bot_user)
    bot = bot_user.user_id
    alice, carol = await new_human("alice"), await new_human("carol")
    room_id = await room_with_bot(alice, bot, carol, preset=RoomPreset.public_chat)
    subscribed = await alice.ask(room_id, bot, "!subscribe")
    assert subscribed.body.startswith("Subscribed"), subscribed.body

    status, data = await _upgrade(alice, room_id)
    assert status == 200, data
    new_room = data["replacement_room"]

    async def moved() -> Any:
        known = await store.chats.get("matrix", new_room)
        return known if known and known[1] else None

    chat, _ = await eventually(moved, timeout=15)
    assert chat.kind is ChatKind.ROOM
    assert [str(s.filter) for s in await store.chats.for_chat(chat)] == ["all"]
    assert await store.chats.get("matrix", room_id) is None


async def _upgrade(human: Human, room_id: str) -> tuple[int, dict[str, Any]]:
    """Upgrade a room as Element's /upgraderoom does (nio has no call for it)."""
    path = f"/_matrix/client/v3/rooms/{room_id}/upgrade"
    headers = {"Authorization": f"Bearer {human.client.access_token}"}
    response = await human.client.send("POST", path, json.dumps({"new_version": "12"}), headers)
    data = await response.json()
    return response.status, data


async def test_rate_limit_becomes_retry_after(
    synapse_strict: Synapse, start_bot: StartBot, new_human: NewHuman
) -> None:
    bot_user = synapse_strict.register(unique("statementbot"))
    platform = await start_bot(bot_user, server=synapse_strict)
    alice = await new_human("alice", server=synapse_strict)
    room_id = await alice.create_room([bot_user.user_id])
    await alice.until(lambda: alice.notices(room_id, bot_user.user_id))  # joined, welcomed
    chat, _ = await platform.services.store.chats.get("matrix", room_id) or (None, False)
    assert chat is not None

    began = time.monotonic()
    outcomes = []
    message: Reply = reply("burst")
    for _ in range(15):
        outcome = await platform.send(chat, message)
        outcomes.append(outcome)
        if isinstance(outcome, RetryAfter):
            break
    assert isinstance(outcomes[-1], RetryAfter), outcomes
    assert outcomes[-1].seconds > 0
    assert all(isinstance(o, Sent) for o in outcomes[:-1]), outcomes
    assert time.monotonic() - began < 10, "nio must not sleep on 429 itself"
