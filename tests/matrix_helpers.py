"""A human-like Matrix client for the adapter's tests, and a polling helper.

The human is a plain matrix-nio client on the test Synapse: it creates rooms, invites the
bot, types commands and collects every event it syncs, so a test can wait for "the bot's
answer to that event" instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    EnableEncryptionBuilder,
    KeysUploadResponse,
    RoomCreateResponse,
    RoomMessageNotice,
    RoomPutStateResponse,
    RoomSendResponse,
    SyncResponse,
)
from synapse import RegisteredUser, Synapse

HUMAN_FILTER = {"room": {"timeline": {"limit": 200}}}
NO_RETRY = AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2, request_timeout=10)


def unique(name: str) -> str:
    """Localparts unique per test: the session server is shared by every test."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def replied_to(event: Any) -> str | None:
    """The event id a message replies to (plain reply or in a thread)."""
    relates = (event.source.get("content") or {}).get("m.relates_to") or {}
    return (relates.get("m.in_reply_to") or {}).get("event_id")


class Human:
    """A person on the test homeserver, driving a nio client by hand."""

    def __init__(self, client: AsyncClient, user: RegisteredUser) -> None:
        self.client = client
        self.user = user
        self.user_id = user.user_id
        self.events: dict[str, list[Any]] = {}

    @classmethod
    async def create(
        cls, server: Synapse, user: RegisteredUser, *, e2e_store: Path | None = None
    ) -> Human:
        if e2e_store is None:
            client = AsyncClient(
                server.url, user.user_id, device_id=user.device_id, config=NO_RETRY
            )
            client.access_token = user.access_token
        else:
            await asyncio.to_thread(e2e_store.mkdir, parents=True, exist_ok=True)
            config = AsyncClientConfig(
                encryption_enabled=True, store_sync_tokens=False, max_limit_exceeded=0
            )
            client = AsyncClient(server.url, user.user_id, store_path=str(e2e_store), config=config)
            client.restore_login(user.user_id, user.device_id, user.access_token)
            uploaded = await client.keys_upload()
            assert isinstance(uploaded, KeysUploadResponse), uploaded
        human = cls(client, user)
        await human.sync(0)
        return human

    async def sync(self, timeout_ms: int = 500) -> None:
        response = await self.client.sync(timeout=timeout_ms, sync_filter=HUMAN_FILTER)
        assert isinstance(response, SyncResponse), response
        for room_id, info in response.rooms.join.items():
            self.events.setdefault(room_id, []).extend(info.timeline.events)
        if self.client.olm is not None:
            if self.client.should_query_keys:
                await self.client.keys_query()
            if self.client.outgoing_to_device_messages:
                await self.client.send_to_device_messages()

    async def until(self, found: Callable[[], Any], within: float = 15.0) -> Any:
        """Sync until found() is truthy."""
        end = time.monotonic() + within
        while True:
            value = found()
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"{self.user_id}: nothing matching within {within} s")
            await self.sync(500)

    # -- rooms ---------------------------------------------------------------------------------

    async def create_room(
        self, invite: list[str], *, encrypted: bool = False, name: str = "Statements", **kw: Any
    ) -> str:
        initial = [EnableEncryptionBuilder().as_dict()] if encrypted else []
        created = await self.client.room_create(
            name=name, invite=invite, initial_state=initial, **kw
        )
        assert isinstance(created, RoomCreateResponse), created
        return created.room_id

    async def join(self, room_id: str) -> None:
        await self.until(lambda: room_id in self.client.invited_rooms)
        await self.client.join(room_id)
        await self.until(lambda: room_id in self.client.rooms)

    async def set_power(self, room_id: str, user_id: str, level: int) -> None:
        current = await self.client.room_get_state_event(room_id, "m.room.power_levels")
        levels = dict(current.content)  # type: ignore[union-attr]
        levels["users"] = {**levels.get("users", {}), user_id: level}
        put = await self.client.room_put_state(room_id, "m.room.power_levels", levels)
        assert isinstance(put, RoomPutStateResponse), put

    # -- messages ------------------------------------------------------------------------------

    async def say(self, room_id: str, body: str, **extra: Any) -> str:
        content = {"msgtype": "m.text", "body": body, **extra}
        sent = await self.client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        assert isinstance(sent, RoomSendResponse), sent
        return sent.event_id

    def notices(self, room_id: str, sender: str) -> list[RoomMessageNotice]:
        return [
            e
            for e in self.events.get(room_id, [])
            if isinstance(e, RoomMessageNotice) and e.sender == sender
        ]

    def replies(self, room_id: str, sender: str, event_id: str) -> list[RoomMessageNotice]:
        return [e for e in self.notices(room_id, sender) if replied_to(e) == event_id]

    async def reply_to(
        self, room_id: str, sender: str, event_id: str, within: float = 15.0
    ) -> RoomMessageNotice:
        """The first notice from `sender` replying to `event_id`."""
        found = await self.until(lambda: self.replies(room_id, sender, event_id), within)
        return found[0]  # type: ignore[no-any-return]

    async def ask(self, room_id: str, bot: str, body: str, **extra: Any) -> RoomMessageNotice:
        """Say something and wait for the bot's answer to it."""
        event_id = await self.say(room_id, body, **extra)
        return await self.reply_to(room_id, bot, event_id)
