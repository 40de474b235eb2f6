"""The Synapse harness works, and matrix-nio does against it what the Matrix adapter will do.

Why: these are the recipes the bot's Matrix adapter is built from (password login, room
create/invite/join, notices, power levels, 429 handling, end-to-end encryption); if Synapse or nio
change behaviour, this file says so before the adapter's tests do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    AsyncClientConfig,
    EnableEncryptionBuilder,
    InviteMemberEvent,
    JoinResponse,
    KeysUploadResponse,
    LoginResponse,
    MegolmEvent,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomInviteResponse,
    RoomMessageNotice,
    RoomMessageText,
    RoomPutStateResponse,
    RoomSendError,
    RoomSendResponse,
    SyncResponse,
)
from nio.exceptions import OlmUnverifiedDeviceError
from synapse import RegisteredUser, Synapse

pytestmark = pytest.mark.timeout(60)

# nio retries 429s forever by default, sleeping retry_after_ms each time; 0 returns the first
# M_LIMIT_EXCEEDED to the caller, which is what the broadcaster needs to schedule its own wait.
NO_RETRY = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2, request_timeout=10)


def unique(name: str) -> str:
    """Localparts unique per test: the session server is shared by every test."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def client_for(server: Synapse, user: RegisteredUser, config: AsyncClientConfig) -> AsyncClient:
    """A client reusing the access token the admin API returned (no login round trip)."""
    client = AsyncClient(server.url, user.user_id, device_id=user.device_id, config=config)
    client.access_token = user.access_token
    return client


async def sync_until(
    client: AsyncClient, found: Callable[[SyncResponse], Any], deadline: float = 10.0
) -> Any:
    """Sync until found(response) is truthy; return it. Long-polls so no busy looping."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        response = await client.sync(timeout=1000)
        assert isinstance(response, SyncResponse), response
        result = found(response)
        if result:
            return result
    raise AssertionError(f"{client.user_id}: nothing matching after {deadline} s")


def timeline(response: SyncResponse, room_id: str) -> list[Any]:
    room = response.rooms.join.get(room_id)
    return list(room.timeline.events) if room else []


@pytest.fixture
async def clients() -> AsyncIterator[list[AsyncClient]]:
    """Collects the test's nio clients and closes their aiohttp sessions afterwards."""
    made: list[AsyncClient] = []
    yield made
    for client in made:
        await client.close()


async def test_server_answers_and_registers(synapse_server: Synapse) -> None:
    assert synapse_server.url.startswith("http://127.0.0.1:")
    assert synapse_server.startup_seconds is not None
    user = synapse_server.register(unique("someone"))
    assert user.user_id == f"@{user.localpart}:localhost"
    assert user.access_token and user.device_id


async def test_login_room_invite_join_send_and_power_levels(
    synapse_server: Synapse, clients: list[AsyncClient]
) -> None:
    alice_user = synapse_server.register(unique("alice"))
    bob_user = synapse_server.register(unique("bob"))

    # Password login, as the bot does with STATEMENT_BOT_MATRIX_PASSWORD.
    alice = AsyncClient(synapse_server.url, alice_user.user_id, config=NO_RETRY)
    clients.append(alice)
    began = time.monotonic()
    login = await alice.login(alice_user.password, device_name="statement-bot test")
    assert isinstance(login, LoginResponse), login
    assert time.monotonic() - began < 1.0, "bcrypt_rounds: 4 should make logins fast"
    assert alice.logged_in and alice.access_token and alice.device_id == login.device_id

    bob = client_for(synapse_server, bob_user, NO_RETRY)
    clients.append(bob)

    created = await alice.room_create(name="Statements", topic="harness test")
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    invited = await alice.room_invite(room_id, bob_user.user_id)
    assert isinstance(invited, RoomInviteResponse), invited

    # Bob sees the invite in sync and joins, as the bot will auto-join on invite.
    def invite_seen(response: SyncResponse) -> bool:
        invite = response.rooms.invite.get(room_id)
        return bool(invite) and any(
            isinstance(event, InviteMemberEvent) and event.membership == "invite"
            for event in invite.invite_state
        )

    await sync_until(bob, invite_seen)
    joined = await bob.join(room_id)
    assert isinstance(joined, JoinResponse), joined
    first = await bob.sync(timeout=0)  # history up to here: the bot must not react to it
    assert isinstance(first, SyncResponse)

    sent = await alice.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "hello bob"}
    )
    assert isinstance(sent, RoomSendResponse), sent
    notice = await alice.room_send(
        room_id, "m.room.message", {"msgtype": "m.notice", "body": "a statement"}
    )
    assert isinstance(notice, RoomSendResponse), notice

    received: list[Any] = []

    def both_arrived(response: SyncResponse) -> bool:
        received.extend(timeline(response, room_id))
        return {sent.event_id, notice.event_id} <= {e.event_id for e in received}

    await sync_until(bob, both_arrived)
    by_id = {event.event_id: event for event in received}
    assert isinstance(by_id[sent.event_id], RoomMessageText)
    assert by_id[sent.event_id].body == "hello bob"
    assert by_id[sent.event_id].sender == alice_user.user_id
    assert isinstance(by_id[notice.event_id], RoomMessageNotice)

    # Synapse 1.163 creates room version 12 by default: room ids carry no ":server" part, and
    # creators hold unlimited power without appearing in power_levels.users (MSC4289).
    create = await alice.room_get_state_event(room_id, "m.room.create")
    assert isinstance(create, RoomGetStateEventResponse), create
    assert create.content["room_version"] == "12"
    assert ":" not in room_id

    # Power levels: read, change, read back (the bot checks who may post / subscribe a room).
    current = await alice.room_get_state_event(room_id, "m.room.power_levels")
    assert isinstance(current, RoomGetStateEventResponse), current
    levels = dict(current.content)
    assert alice_user.user_id not in levels["users"]
    assert levels["events"]["m.room.tombstone"] == 150
    levels["users"] = {**levels["users"], bob_user.user_id: 50}
    put = await alice.room_put_state(room_id, "m.room.power_levels", levels)
    assert isinstance(put, RoomPutStateResponse), put
    again = await bob.room_get_state_event(room_id, "m.room.power_levels")
    assert isinstance(again, RoomGetStateEventResponse), again
    assert again.content["users"][bob_user.user_id] == 50

    # nio 0.26 knows nothing of v12 creators: it reports the creator at users_default (0).
    # The adapter must treat the m.room.create sender (and content.additional_creators) as
    # above every level itself.
    await sync_until(
        bob, lambda _: bob.rooms[room_id].power_levels.get_user_level(bob_user.user_id) == 50
    )
    nio_levels = bob.rooms[room_id].power_levels
    assert nio_levels.get_user_level(alice_user.user_id) == 0


async def test_relaxed_server_does_not_rate_limit(
    synapse_server: Synapse, clients: list[AsyncClient]
) -> None:
    user = synapse_server.register(unique("chatty"))
    client = client_for(synapse_server, user, NO_RETRY)
    clients.append(client)
    room = await client.room_create()
    assert isinstance(room, RoomCreateResponse), room
    for n in range(30):
        sent = await client.room_send(
            room.room_id, "m.room.message", {"msgtype": "m.notice", "body": str(n)}
        )
        assert isinstance(sent, RoomSendResponse), (n, sent)


async def test_strict_server_rate_limits_and_admin_override_lifts_it(
    synapse_strict: Synapse, clients: list[AsyncClient]
) -> None:
    admin = synapse_strict.register(unique("admin"), admin=True)
    limited_user = synapse_strict.register(unique("limited"))
    bot_user = synapse_strict.register(unique("bot"))
    synapse_strict.override_ratelimit(admin.access_token, bot_user.user_id)

    limited = client_for(synapse_strict, limited_user, NO_RETRY)
    bot = client_for(synapse_strict, bot_user, NO_RETRY)
    clients.extend([limited, bot])

    async def burst(client: AsyncClient, count: int) -> list[RoomSendResponse | RoomSendError]:
        room = await client.room_create()
        assert isinstance(room, RoomCreateResponse), room
        content = {"msgtype": "m.notice", "body": "burst"}
        return [
            await client.room_send(room.room_id, "m.room.message", content) for _ in range(count)
        ]

    # Burst 10 then 0.2/s, and creating the room spent one token: sends 1-9 pass, then refusals.
    # Synapse holds each refusal ~0.5 s before answering (its anti-tight-loop pause), so keep
    # the overshoot small.
    began = time.monotonic()
    replies = await burst(limited, 12)
    assert time.monotonic() - began < 5, "max_limit_exceeded=0 must stop nio from sleeping"
    kinds = ["ok" if isinstance(reply, RoomSendResponse) else "refused" for reply in replies]
    first_refusal = kinds.index("refused")
    assert first_refusal >= 5, kinds
    assert set(kinds[first_refusal:]) == {"refused"}, kinds
    refused = replies[first_refusal]
    assert isinstance(refused, RoomSendError)
    assert refused.status_code == "M_LIMIT_EXCEEDED"
    assert refused.retry_after_ms is not None and refused.retry_after_ms > 0
    assert refused.transport_response is not None and refused.transport_response.status == 429

    # The same burst from a user whose limit an admin lifted goes through.
    replies = await burst(bot, 12)
    assert all(isinstance(reply, RoomSendResponse) for reply in replies), replies


async def e2e_client(
    server: Synapse, user: RegisteredUser, store: Path, *, password_login: bool
) -> AsyncClient:
    """An encrypting client with a persistent crypto store and this device's keys uploaded.

    Both ways the bot may authenticate: a password login (new device each time unless a
    device_id is passed), or restore_login with an existing access token and its device id.
    """
    await asyncio.to_thread(store.mkdir)
    config = AsyncClientConfig(
        encryption_enabled=True, store_sync_tokens=True, max_limit_exceeded=0
    )
    client = AsyncClient(server.url, user.user_id, store_path=str(store), config=config)
    if password_login:
        login = await client.login(user.password, device_name="e2e test")
        assert isinstance(login, LoginResponse), login
    else:
        client.restore_login(user.user_id, user.device_id, user.access_token)
    assert client.olm is not None, "login/restore_login load the crypto store"
    assert client.should_upload_keys
    uploaded = await client.keys_upload()
    assert isinstance(uploaded, KeysUploadResponse), uploaded
    return client


async def test_encrypted_room_round_trip(
    synapse_server: Synapse, clients: list[AsyncClient], tmp_path: Path
) -> None:
    alice_user = synapse_server.register(unique("alice"))
    bob_user = synapse_server.register(unique("bob"))
    alice = await e2e_client(synapse_server, alice_user, tmp_path / "alice", password_login=True)
    clients.append(alice)
    bob = await e2e_client(synapse_server, bob_user, tmp_path / "bob", password_login=False)
    clients.append(bob)

    created = await alice.room_create(
        name="Encrypted",
        invite=[bob_user.user_id],
        initial_state=[EnableEncryptionBuilder().as_dict()],
    )
    assert isinstance(created, RoomCreateResponse), created
    room_id = created.room_id
    await sync_until(bob, lambda response: room_id in response.rooms.invite)
    joined = await bob.join(room_id)
    assert isinstance(joined, JoinResponse), joined
    await bob.sync(timeout=0)

    # Alice learns of the room, Bob's membership and Bob's device keys.
    def bob_joined(_: SyncResponse) -> bool:
        room = alice.rooms.get(room_id)
        return bool(room) and room.encrypted and bob_user.user_id in room.users

    await sync_until(alice, bob_joined)
    if alice.should_query_keys:
        await alice.keys_query()
    bob_devices = list(alice.device_store.active_user_devices(bob_user.user_id))
    assert [device.device_id for device in bob_devices] == [bob.device_id]

    # Unverified devices in the room make nio refuse to encrypt...
    content = {"msgtype": "m.notice", "body": "encrypted statement"}
    with pytest.raises(OlmUnverifiedDeviceError):
        await alice.room_send(room_id, "m.room.message", content)
    # ...until they are verified (trust on first use, as a bot would).
    for device in bob_devices:
        alice.verify_device(device)
    sent = await alice.room_send(room_id, "m.room.message", content)
    assert isinstance(sent, RoomSendResponse), sent

    # On the wire the event is m.room.encrypted; Bob's nio decrypts it during sync.
    raw = await bob.room_get_event(room_id, sent.event_id)
    assert raw.event.source["type"] == "m.room.encrypted"  # type: ignore[union-attr]

    def arrived(response: SyncResponse) -> Any:
        events = [e for e in timeline(response, room_id) if e.event_id == sent.event_id]
        return events[0] if events else None

    event = await sync_until(bob, arrived)
    assert not isinstance(event, MegolmEvent), "undecryptable: room key did not arrive"
    assert isinstance(event, RoomMessageNotice)
    assert event.body == "encrypted statement"
    assert event.decrypted and event.sender == alice_user.user_id

    # The other recipe: no verification, ignore_unverified_devices=True still shares the key.
    # Bob's room_send fetches members and queries Alice's keys itself.
    reply = await bob.room_send(
        room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": "thanks"},
        ignore_unverified_devices=True,
    )
    assert isinstance(reply, RoomSendResponse), reply

    def reply_arrived(response: SyncResponse) -> Any:
        events = [e for e in timeline(response, room_id) if e.event_id == reply.event_id]
        return events[0] if events else None

    answer = await sync_until(alice, reply_arrived)
    assert isinstance(answer, RoomMessageText) and answer.decrypted, answer
    assert answer.body == "thanks"


def test_start_failure_reports_the_log(tmp_path: Path, synapse_server: Synapse) -> None:
    """A broken config must fail fast with Synapse's own words, not a 60 s timeout."""
    broken = Synapse(tmp_path / "broken", python=synapse_server.python)
    broken.config = lambda: {"server_name": "localhost"}  # type: ignore[method-assign]  # no report_stats
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="Synapse exited"):
        broken.start()
    assert time.monotonic() - began < 30
