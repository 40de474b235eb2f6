"""Matrix: the bot on matrix-nio, in plain and end-to-end encrypted rooms.

The adapter owns its sync loop instead of nio's `sync_forever` so that the sync token is
saved in the store only *after* a response's events were handled: a crash mid-command
re-delivers that command on the next start instead of skipping it. nio's own sync-token
store is off for the same reason; its crypto store (olm/megolm keys) is kept on disk.

Trust policy (end-to-end encryption): trust on first use. The first time the bot sees a
device of a member of an encrypted room, it marks that device verified (and logs it); keys
are shared with every device of the room's members. A device that later shows different
keys under the same id is not silently re-trusted (nio keeps the first keys). Devices a
human blacklists stay blacklisted: the bot never shares keys with them.

Rate limits: nio is told never to sleep on M_LIMIT_EXCEEDED (`max_limit_exceeded=0`); the
429 becomes `RetryAfter(seconds)` and the broadcaster decides how long to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import re
import time
import urllib.parse
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientConnectionError
from nio import (
    AsyncClient,
    AsyncClientConfig,
    DirectRoomsResponse,
    EncryptionError,
    InviteMemberEvent,
    JoinedRoomsResponse,
    LocalProtocolError,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    ProfileGetDisplayNameResponse,
    RoomCreateResponse,
    RoomGetStateEventResponse,
    RoomGetStateResponse,
    RoomMemberEvent,
    RoomMessagesResponse,
    RoomMessageText,
    RoomPreset,
    RoomSendError,
    RoomSendResponse,
    RoomUpgradeEvent,
    SendRetryError,
    SyncResponse,
    WhoamiResponse,
)
from nio.crypto import ENCRYPTION_ENABLED

from bot.config import MatrixConfig
from bot.logs import register_secret
from bot.model import (
    Chat,
    ChatKind,
    Command,
    Gone,
    Outcome,
    Permanent,
    Reply,
    RetryAfter,
    Sent,
    Transient,
    User,
)
from bot.platforms.base import answer, parse_command_text
from bot.render import MATRIX_LIMIT, buttons_text, split, to_matrix_html, to_text
from handlers.context import Services

log = logging.getLogger(__name__)

SYNC_TIMEOUT_MS = 30_000
REQUEST_TIMEOUT = 30.0
STOP_GRACE = 4.0
UNDECRYPTED_KEEP = 600.0  # seconds to keep retrying an event whose room key has not arrived
SEEN_EVENTS = 2000
SYNC_FILTER = {"room": {"timeline": {"limit": 50}}}
GAP_LIMIT = 500  # events fetched at most to fill one room's gap after a limited sync
GAP_FILTER = {"types": ["m.room.message", "m.room.encrypted", "m.room.member"]}
# Room versions before MSC4289: creators are ordinary power-level holders there.
_LEGACY_ROOM_VERSIONS = frozenset(str(n) for n in range(1, 12))
_PILL = re.compile(
    r"""^\s*<a\s[^>]*href=["']https://matrix\.to/#/([^"'?]+)[^"']*["'][^>]*>(.*?)</a>""",
    re.IGNORECASE | re.DOTALL,
)
_TAG = re.compile(r"<[^>]+>")


class MatrixLoginError(RuntimeError):
    """The homeserver refused the bot's credentials; the message says which setting."""


@dataclass(frozen=True, slots=True)
class _ReplyTarget:
    """The command event a reply answers: set while a command is handled, so that
    `send()` (called through the platform-neutral `answer()`) can relate to it."""

    room_id: str
    event_id: str
    thread_root: str | None


_reply_target: ContextVar[_ReplyTarget | None] = ContextVar("matrix_reply_target", default=None)


@dataclass(frozen=True, slots=True)
class _Creators:
    """Who created a room (m.room.create sender + additional_creators) and its version."""

    users: frozenset[str]
    room_version: str
    predecessor: str | None

    @property
    def privileged(self) -> bool:
        """Room v12+ (MSC4289): creators outrank every power level."""
        return self.room_version not in _LEGACY_ROOM_VERSIONS


class MatrixPlatform:
    name = "matrix"

    def __init__(self, config: MatrixConfig, services: Services, database: str) -> None:
        self.config = config
        self.services = services
        self.prefix = config.command_prefix
        self.user_id = config.user_id
        self.localpart = self.user_id[1:].split(":", 1)[0]
        self.server_name = self.user_id.split(":", 1)[1] if ":" in self.user_id else ""
        allowed = config.allowed_servers or [self.server_name]
        self.allowed_servers = frozenset(s.strip().lower() for s in allowed if s.strip())
        if config.store_path:
            self.store_path = Path(config.store_path).expanduser()
        else:
            self.store_path = Path(database).expanduser().absolute().parent / "matrix-store"
        self.client: AsyncClient | None = None
        self._since: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = False  # between a sync response and saving its token
        self._initial_done = False  # this run's first (full-state) sync went through
        self._connected = False
        self._sync_tick = asyncio.Event()
        self._display_names: set[str] = set()
        self._creators: dict[str, _Creators] = {}
        self._invited_by: dict[str, str] = {}  # rooms joined on invite → inviter, for a welcome
        self._direct: dict[str, str] = {}  # user id → DM room id
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._undecrypted: list[tuple[float, MegolmEvent]] = []
        self._key_requests: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- settings keys

    def _key(self, what: str) -> str:
        """Settings are kept per bot account: a new user id starts afresh."""
        return f"matrix.{what}.{self.user_id}"

    # ----------------------------------------------------------------- Platform protocol

    @property
    def connected(self) -> bool:
        return self._connected

    def global_rate(self) -> float:
        return self.config.messages_per_second

    def chat_interval(self, chat: Chat) -> float:
        return 0.0

    async def start(self) -> None:
        """Log in, upload keys, do the first sync, then keep syncing in a task."""
        await asyncio.to_thread(self.store_path.mkdir, parents=True, exist_ok=True)
        client_config = AsyncClientConfig(
            encryption_enabled=ENCRYPTION_ENABLED,
            store_sync_tokens=False,
            max_limit_exceeded=0,
            max_timeouts=2,
            request_timeout=REQUEST_TIMEOUT,
        )
        self.client = AsyncClient(
            self.config.homeserver,
            self.user_id,
            store_path=str(self.store_path),
            config=client_config,
        )
        self._stopping = False
        self._initial_done = False
        try:
            try:
                await self._login()
            except (ClientConnectionError, TimeoutError) as exc:
                raise MatrixLoginError(
                    f"cannot reach the Matrix homeserver {self.config.homeserver}: {exc}"
                ) from exc
            if self.client.olm is not None and self.client.should_upload_keys:
                await self.client.keys_upload()
            await self._load_display_name()
            self._since = await self.services.store.settings.get(self._key("sync_token"))
            try:
                await self._sync_once()
            except Exception as exc:  # the loop retries; a slow homeserver must not block start
                log.warning("first Matrix sync failed, retrying in the background: %s", exc)
        except BaseException:
            await self.client.close()
            raise
        self._task = asyncio.create_task(self._sync_loop(), name="matrix-sync")

    async def stop(self) -> None:
        """Stop syncing (letting the events being handled finish) and close the client."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            if self._busy:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(task), STOP_GRACE)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for request in list(self._key_requests):
            request.cancel()
        await asyncio.gather(*self._key_requests, return_exceptions=True)
        self._connected = False
        if self.client is not None:
            await self.client.close()
        log.info("matrix: stopped")

    async def send(self, chat: Chat, reply: Reply) -> Outcome:
        """Send a reply as m.notice(s); relates to the command being answered, if any."""
        target = _reply_target.get()
        if target is not None and target.room_id != chat.chat_id:
            target = None
        outcome: Outcome = Permanent("empty reply")
        for index, part in enumerate(split(reply, MATRIX_LIMIT)):
            content = self._content(part, target, first=index == 0)
            outcome = await self._send_content(chat.chat_id, content)
            if not isinstance(outcome, Sent):
                return outcome
        return outcome

    async def send_direct(self, user_id: str, reply: Reply) -> Outcome:
        """A private message: the user's existing DM room with the bot, or a new one."""
        try:
            room_id = await self._direct_room(user_id)
        except (ClientConnectionError, TimeoutError) as exc:
            return Transient(f"cannot reach the homeserver: {exc!r}")
        if isinstance(room_id, Transient | Permanent):
            return room_id
        return await self.send(Chat(self.name, room_id, ChatKind.PRIVATE, user_id), reply)

    async def sender_is_chat_admin(self, chat: Chat, sender: User) -> bool:
        """DM: yes. A room: a creator (room v12+), or a power level that may send state
        events. Power levels are read from the server, not from a cache that may lag."""
        if chat.kind is ChatKind.PRIVATE:
            return True
        client = self._client()
        room_id = chat.chat_id
        try:
            creators = await self._room_creators(room_id)
            if creators is not None and creators.privileged and sender.user_id in creators.users:
                return True
            response = await client.room_get_state_event(room_id, "m.room.power_levels")
        except (ClientConnectionError, TimeoutError) as exc:
            log.warning("power levels of %s unavailable: %r", room_id, exc)
            return False
        if not isinstance(response, RoomGetStateEventResponse):
            log.warning("power levels of %s unavailable: %s", room_id, response)
            return False
        levels = response.content
        users = levels.get("users") or {}
        level = _as_int(users.get(sender.user_id, levels.get("users_default", 0)))
        required = _as_int(levels.get("state_default", 50))
        log.info(
            "power level of %s in %s: %d (state needs %d)", sender.user_id, room_id, level, required
        )
        return level >= required

    async def resolve_chat(self, ref: str, sender: User) -> Chat | str | None:
        """Matrix commands are about the room they are sent in."""
        return None

    # ----------------------------------------------------------------- login

    def _client(self) -> AsyncClient:
        if self.client is None:
            raise RuntimeError("MatrixPlatform used before start()")
        return self.client

    async def _login(self) -> None:
        """Access token from the config, else the token saved after an earlier password
        login, else a password login (reusing the saved device, so the crypto store and
        the keys other users trust stay the same)."""
        client = self._client()
        settings = self.services.store.settings
        token_key, device_key = self._key("access_token"), self._key("device_id")
        saved_device = await settings.get(device_key)
        if self.config.access_token:
            device = await self._whoami(self.config.access_token)
            if device is None:
                raise MatrixLoginError(
                    f"STATEMENT_BOT_MATRIX_ACCESS_TOKEN was refused by {self.config.homeserver}"
                )
            device = device or saved_device
            if not device:
                raise MatrixLoginError(
                    "the access token has no device id; use a token from a login "
                    "(or STATEMENT_BOT_MATRIX_PASSWORD)"
                )
            await self.services.store.settings.set(device_key, device)
            client.restore_login(self.user_id, device, self.config.access_token)
            log.info("matrix: %s logged in with an access token, device %s", self.user_id, device)
            return
        saved_token = await settings.get(token_key)
        if saved_token:
            register_secret(saved_token)
            device = await self._whoami(saved_token)
            if device is not None and (device or saved_device):
                client.restore_login(self.user_id, device or saved_device or "", saved_token)
                log.info("matrix: %s reusing its saved login, device %s", self.user_id, device)
                return
            log.warning("matrix: the saved access token was refused; logging in with password")
        if not self.config.password:
            raise MatrixLoginError(
                f"no usable login for {self.user_id}: set STATEMENT_BOT_MATRIX_PASSWORD "
                "or STATEMENT_BOT_MATRIX_ACCESS_TOKEN"
            )
        if saved_device:
            client.device_id = saved_device
        response = await client.login(self.config.password, device_name=self.config.device_name)
        if not isinstance(response, LoginResponse):
            raise MatrixLoginError(
                f"password login as {self.user_id} on {self.config.homeserver} failed: "
                f"{getattr(response, 'message', response)}"
            )
        register_secret(response.access_token)
        await settings.set(token_key, response.access_token)
        await settings.set(device_key, response.device_id)
        log.info("matrix: %s logged in with password, device %s", self.user_id, response.device_id)

    async def _whoami(self, token: str) -> str | None:
        """The device id behind a token ("" when it has none); None when it is refused."""
        client = self._client()
        client.access_token = token
        response = await client.whoami()
        client.access_token = ""
        if not isinstance(response, WhoamiResponse):
            if getattr(response, "status_code", "") in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                return None
            raise MatrixLoginError(f"cannot check the Matrix login: {response}")
        if response.user_id != self.user_id:
            raise MatrixLoginError(
                f"the access token belongs to {response.user_id}, "
                f"not STATEMENT_BOT_MATRIX_USER_ID={self.user_id}"
            )
        return response.device_id or ""

    async def _load_display_name(self) -> None:
        names = {self.user_id, self.localpart, "@" + self.localpart}
        try:
            response = await self._client().get_displayname()
        except (ClientConnectionError, TimeoutError):
            response = None
        if isinstance(response, ProfileGetDisplayNameResponse) and response.displayname:
            names.add(response.displayname)
        self._display_names = {n.lower() for n in names if n}

    # ----------------------------------------------------------------- sync

    async def _sync_loop(self) -> None:
        backoff = 1.0
        while not self._stopping:
            try:
                await self._sync_once()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._connected = False
                if isinstance(exc, _SyncFailed) and exc.code == "M_UNKNOWN_TOKEN":
                    log.error("matrix: the homeserver no longer accepts the bot's login")
                    if await self._relogin():
                        continue
                if isinstance(exc, _SyncFailed | ClientConnectionError | TimeoutError):
                    log.warning("matrix sync failed (retry in %.0f s): %s", backoff, exc)
                else:
                    log.exception("matrix sync failed (retry in %.0f s)", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def _relogin(self) -> bool:
        """A revoked saved token: log in again with the password, keeping the device."""
        if not self.config.password or self.config.access_token:
            return False
        await self.services.store.settings.set(self._key("access_token"), "")
        try:
            await self._login()
        except (MatrixLoginError, ClientConnectionError, TimeoutError) as exc:
            log.error("matrix: login again failed: %s", exc)
            return False
        return True

    async def _sync_once(self) -> None:
        """One sync: handle its events, then (only then) save its token.

        The initial sync of a run asks for the full state; on the very first start (no
        saved token) its timeline is history and is not answered.
        """
        client = self._client()
        initial = not self._initial_done
        first_ever = initial and self._since is None
        response = await client.sync(
            timeout=0 if initial else SYNC_TIMEOUT_MS,
            since=self._since,
            full_state=True if initial else None,
            sync_filter=SYNC_FILTER,
        )
        if not isinstance(response, SyncResponse):
            raise _SyncFailed(response)
        self._busy = True
        try:
            self._connected = True
            await self._handle_sync(
                response, answer_commands=not first_ever, since=self._since, initial=initial
            )
            self._since = response.next_batch
            await self.services.store.settings.set(self._key("sync_token"), response.next_batch)
            self._initial_done = True
        finally:
            self._busy = False
        await self._after_sync()
        tick, self._sync_tick = self._sync_tick, asyncio.Event()
        tick.set()

    async def _after_sync(self) -> None:
        """The housekeeping `sync_forever` would do, plus the trust-on-first-use step."""
        client = self._client()
        if client.olm is None:
            return
        try:
            if client.outgoing_to_device_messages:
                await client.send_to_device_messages()
            if client.should_upload_keys:
                await client.keys_upload()
            if client.should_query_keys:
                await client.keys_query()
            if client.should_claim_keys:
                await client.keys_claim(client.get_users_for_key_claiming())
        except (ClientConnectionError, TimeoutError, LocalProtocolError) as exc:
            log.warning("matrix key maintenance failed: %s", exc)
        self._trust_new_devices()

    def _trust_new_devices(self) -> None:
        client = self._client()
        users: set[str] = set()
        for room in client.rooms.values():
            if room.encrypted:
                users.update(room.users)
        for user_id in sorted(users):
            for device in client.device_store.active_user_devices(user_id):
                if device.verified or device.blacklisted:
                    continue
                if user_id == self.user_id and device.id == client.device_id:
                    continue
                client.verify_device(device)
                log.info(
                    "matrix: trusting device %s of %s on first use (ed25519 %s)",
                    device.id,
                    user_id,
                    device.ed25519,
                )

    async def _handle_sync(
        self, response: SyncResponse, *, answer_commands: bool, since: str | None, initial: bool
    ) -> None:
        for room_id, info in response.rooms.invite.items():
            await self._guard(self._on_invite(room_id, info.invite_state), room_id)
        for room_id, join in response.rooms.join.items():
            room = self._client().rooms.get(room_id)
            if room is None:
                continue
            self._note_state(room_id, [*join.state, *join.timeline.events])
            timeline = list(join.timeline.events)
            if join.timeline.limited and answer_commands and since and join.timeline.prev_batch:
                timeline = await self._fill_gap(room_id, join.timeline.prev_batch, since) + timeline
            events, joined_now = self._after_own_join(timeline)
            if joined_now:
                await self._guard(self._on_joined(room), room_id)
            for event in events:
                await self._guard(self._on_event(room, event, answer_commands), room_id)
            if initial or _someone_left(timeline, self.user_id):
                await self._guard(self._leave_if_alone(room), room_id)
        await self._retry_undecrypted(answer_commands)
        for room_id, leave in response.rooms.leave.items():
            await self._guard(self._on_left(room_id, leave.timeline.events), room_id)

    async def _fill_gap(self, room_id: str, prev_batch: str, since: str) -> list[Any]:
        """A limited timeline left out events since the last sync (a busy room, a long
        stop): fetch them, oldest first, so no command is missed."""
        events: list[Any] = []
        token: str | None = prev_batch
        while token and len(events) < GAP_LIMIT:
            response = await self._client().room_messages(
                room_id, start=token, end=since, limit=100, message_filter=GAP_FILTER
            )
            if not isinstance(response, RoomMessagesResponse) or not response.chunk:
                break
            events.extend(response.chunk)
            if not response.end or response.end == token:
                break
            token = response.end
        if events:
            log.info("matrix: fetched %d events skipped by sync in %s", len(events), room_id)
        events.reverse()
        return events

    async def _guard(self, work: Any, room_id: str) -> None:
        """One bad event must not stop the others (nor replay forever)."""
        try:
            await work
        except (ClientConnectionError, TimeoutError) as exc:
            log.warning("matrix: handling an event in %s failed: %r", room_id, exc)
        except Exception:
            log.exception("matrix: handling an event in %s failed", room_id)

    def _after_own_join(self, events: list[Any]) -> tuple[list[Any], bool]:
        """A room just joined comes with some history: keep only what follows the join."""
        start = 0
        for index, event in enumerate(events):
            if (
                isinstance(event, RoomMemberEvent)
                and event.state_key == self.user_id
                and event.membership == "join"
                and event.prev_membership != "join"
            ):
                start = index + 1
        return events[start:], start > 0

    def _note_state(self, room_id: str, events: list[Any]) -> None:
        # By type, not class: nio 0.26 rejects v12 create events (predecessor without
        # event_id) as BadEvent, but their source is intact.
        for event in events:
            source = getattr(event, "source", None)
            if isinstance(source, dict) and source.get("type") == "m.room.create":
                self._creators[room_id] = _creators_from(source)

    async def _on_event(self, room: MatrixRoom, event: Any, answer_commands: bool) -> None:
        if getattr(event, "sender", None) == self.user_id:
            return
        if isinstance(event, RoomUpgradeEvent):
            await self._on_tombstone(room, event)
        elif isinstance(event, MegolmEvent):
            self._keep_undecrypted(event)
        elif isinstance(event, RoomMessageText) and answer_commands:
            await self._on_message(room, event)

    # ----------------------------------------------------------------- commands

    async def _on_message(self, room: MatrixRoom, event: RoomMessageText) -> None:
        if event.event_id in self._seen:
            return
        self._seen[event.event_id] = None
        while len(self._seen) > SEEN_EVENTS:
            self._seen.popitem(last=False)
        content = event.source.get("content") or {}
        relation = content.get("m.relates_to") or {}
        if relation.get("rel_type") == "m.replace":  # an edit: the original was answered
            return
        parsed = self._parse(room, event, content)
        if parsed is None:
            return
        name, args = parsed
        thread_root = relation.get("event_id") if relation.get("rel_type") == "m.thread" else None
        chat = self._chat(room)
        sender = User(self.name, event.sender, room.user_name(event.sender) or event.sender)
        cmd = Command(name, args, chat, sender, message_id=event.event_id)
        log.info("matrix: %s from %s in %s (%s)", name, event.sender, room.room_id, event.event_id)
        token = _reply_target.set(_ReplyTarget(room.room_id, event.event_id, thread_root))
        try:
            await answer(self.services, self, cmd)
        finally:
            _reply_target.reset(token)

    def _parse(
        self, room: MatrixRoom, event: RoomMessageText, content: dict[str, Any]
    ) -> tuple[str, str] | None:
        """`!cmd args`, `botname: cmd args` (also a pill), or plain `cmd args` in a DM."""
        body = event.body or ""
        if (content.get("m.relates_to") or {}).get("m.in_reply_to"):
            body = _strip_reply_fallback(body)
        parsed = parse_command_text(body, (self.prefix,))
        if parsed is not None:
            return parsed[0], parsed[1]
        rest = self._addressed(room, body, event.formatted_body or "")
        if rest is None and self._is_dm(room):
            rest = body
        if rest is None:
            return None
        rest = rest.strip()
        if rest.startswith(self.prefix):
            rest = rest[len(self.prefix) :]
        parsed = parse_command_text(rest, ("",))
        if parsed is None:
            return "help", ""
        return parsed[0], parsed[1]

    def _addressed(self, room: MatrixRoom, body: str, formatted: str) -> str | None:
        """The text after a leading mention of the bot, or None if it is not addressed."""
        text = body.lstrip()
        names = set(self._display_names)
        own = room.user_name(self.user_id)
        if own:
            names.add(own.lower())
        pill = _PILL.match(formatted) if formatted else None
        if pill and urllib.parse.unquote(pill.group(1)) == self.user_id:
            label = html.unescape(_TAG.sub("", pill.group(2))).strip()
            if label:
                names.add(label.lower())
        # A bare name must be followed by ':' or ',' ("bot: latest"), so that a short
        # display name at the start of a sentence does not summon the bot; the user id
        # itself is unambiguous.
        unambiguous = {self.user_id.lower(), "@" + self.localpart.lower()}
        lowered = text.lower()
        for name in sorted(names, key=len, reverse=True):
            if lowered.startswith(name):
                rest = text[len(name) :]
                if not rest or rest[0] in ":," or (rest[0].isspace() and name in unambiguous):
                    return rest.lstrip(":, \t\n")
        if pill and urllib.parse.unquote(pill.group(1)) == self.user_id:
            after = formatted[pill.end() :].replace("<br>", "\n").replace("<br/>", "\n")
            return html.unescape(_TAG.sub("", after)).lstrip(":,; \t\n")
        return None

    def _is_dm(self, room: MatrixRoom) -> bool:
        return room.member_count <= 2

    def _chat(self, room: MatrixRoom) -> Chat:
        kind = ChatKind.PRIVATE if self._is_dm(room) else ChatKind.ROOM
        return Chat(self.name, room.room_id, kind, room.display_name)

    # ----------------------------------------------------------------- encryption

    def _keep_undecrypted(self, event: MegolmEvent) -> None:
        """The room key may still arrive (to-device): ask for it and retry later."""
        log.warning(
            "matrix: cannot decrypt %s in %s from %s yet (session %s)",
            event.event_id,
            event.room_id,
            event.sender,
            event.session_id,
        )
        self._undecrypted.append((time.monotonic(), event))
        task = asyncio.get_running_loop().create_task(self._request_key(event))
        self._key_requests.add(task)
        task.add_done_callback(self._key_requests.discard)

    async def _request_key(self, event: MegolmEvent) -> None:
        """Ask the sender's devices for a missing room key; failing only loses a chance."""
        try:
            await self._client().request_room_key(event)
        except Exception as exc:
            log.info("matrix: room key request for %s not sent: %r", event.event_id, exc)

    async def _retry_undecrypted(self, answer_commands: bool) -> None:
        if not self._undecrypted:
            return
        client = self._client()
        now = time.monotonic()
        keep: list[tuple[float, MegolmEvent]] = []
        for seen_at, event in self._undecrypted:
            try:
                decrypted = client.decrypt_event(event)
            except EncryptionError:
                if now - seen_at < UNDECRYPTED_KEEP:
                    keep.append((seen_at, event))
                else:
                    log.warning(
                        "matrix: gave up decrypting %s in %s", event.event_id, event.room_id
                    )
                continue
            room = client.rooms.get(event.room_id)
            if room is not None and isinstance(decrypted, RoomMessageText) and answer_commands:
                await self._guard(self._on_message(room, decrypted), event.room_id)
        self._undecrypted = keep

    # ----------------------------------------------------------------- membership

    async def _on_invite(self, room_id: str, invite_state: list[Any]) -> None:
        """Join when the inviter's homeserver is allowed; decline otherwise."""
        inviter, is_direct = None, False
        for event in invite_state:
            if (
                isinstance(event, InviteMemberEvent)
                and event.state_key == self.user_id
                and event.membership == "invite"
            ):
                inviter, is_direct = event.sender, bool(event.content.get("is_direct"))
        if inviter is None or room_id in self._client().rooms:
            return
        server = inviter.split(":", 1)[-1].lower()
        client = self._client()
        if server not in self.allowed_servers:
            log.info(
                "matrix: declining invite to %s from %s (server %s not in allowed_servers)",
                room_id,
                inviter,
                server,
            )
            await client.room_leave(room_id)
            client.invited_rooms.pop(room_id, None)
            return
        joined = await self._join(room_id, [server])
        if not joined:
            return
        log.info("matrix: joined %s on invite from %s", room_id, inviter)
        self._invited_by[room_id] = inviter
        if is_direct:
            await self._remember_direct(inviter, room_id)

    async def _on_joined(self, room: MatrixRoom) -> None:
        """Just joined: carry subscriptions over from an upgraded room, and say hello."""
        creators = self._creators.get(room.room_id)
        if creators is not None and creators.predecessor:
            await self._move_chat(creators.predecessor, room)
        inviter = self._invited_by.pop(room.room_id, None)
        if inviter is not None:
            sender = User(self.name, inviter, room.user_name(inviter) or inviter)
            await answer(self.services, self, Command("start", "", self._chat(room), sender))

    async def _on_tombstone(self, room: MatrixRoom, event: RoomUpgradeEvent) -> None:
        """The room was upgraded: follow to the replacement room (the move happens when
        the join shows up in sync, see `_on_joined`)."""
        new_room = event.replacement_room
        if not new_room:
            return
        log.info("matrix: %s was replaced by %s; following", room.room_id, new_room)
        if new_room in self._client().rooms:
            await self._move_chat(room.room_id, self._client().rooms[new_room])
            return
        via = {event.sender.split(":", 1)[-1], self.server_name}
        if not await self._join(new_room, sorted(via)):
            log.warning("matrix: could not join %s (the replacement of %s)", new_room, room.room_id)

    async def _move_chat(self, old_room_id: str, room: MatrixRoom) -> None:
        store = self.services.store
        known = await store.chats.get(self.name, old_room_id)
        if known is None:
            return
        old_chat, active = known
        if not active:
            return
        await store.chats.move(self.name, old_room_id, room.room_id)
        await store.chats.upsert(
            Chat(self.name, room.room_id, old_chat.kind, room.display_name or old_chat.title)
        )
        log.info(
            "matrix: chat moved from %s to %s with its subscriptions", old_room_id, room.room_id
        )

    async def _leave_if_alone(self, room: MatrixRoom) -> None:
        """Checked at start and after someone left: not while a room is being created
        (a sync can show the bot's new DM before the invite)."""
        if room.joined_count > 1 or room.invited_count > 0:
            return
        log.info("matrix: leaving %s, where the bot is alone", room.room_id)
        await self._client().room_leave(room.room_id)
        await self.services.store.chats.deactivate(self.name, room.room_id, "alone in the room")
        self._client().rooms.pop(room.room_id, None)

    async def _on_left(self, room_id: str, events: list[Any]) -> None:
        """Left, kicked or banned: the chat and its subscriptions become inactive."""
        reason = "left the room"
        for event in events:
            if isinstance(event, RoomMemberEvent) and event.state_key == self.user_id:
                if event.membership == "ban":
                    reason = f"banned by {event.sender}"
                elif event.membership == "leave" and event.sender != self.user_id:
                    reason = f"kicked by {event.sender}"
                elif event.prev_membership == "invite":
                    reason = "invite declined"
                why = event.content.get("reason")
                if why and event.sender != self.user_id:
                    reason += f": {why}"
        count = await self.services.store.chats.deactivate(self.name, room_id, reason)
        log.info("matrix: out of %s (%s); %d subscriptions deactivated", room_id, reason, count)
        client = self._client()
        client.rooms.pop(room_id, None)
        client.invited_rooms.pop(room_id, None)
        self._creators.pop(room_id, None)

    async def _join(self, room_id: str, via: list[str]) -> bool:
        """Join with `via` servers (nio's join cannot pass them; v12 room ids name none)."""
        query = urllib.parse.urlencode(
            [("via", s) for s in via] + [("server_name", s) for s in via]
        )
        path = f"/_matrix/client/v3/join/{urllib.parse.quote(room_id, safe='')}?{query}"
        status, data = await self._request("POST", path, {})
        if status != 200:
            log.warning("matrix: joining %s failed: %s %s", room_id, status, data.get("errcode"))
            return False
        return True

    # ----------------------------------------------------------------- direct messages

    async def _direct_room(self, user_id: str) -> str | Transient | Permanent:
        client = self._client()
        cached = self._direct.get(user_id)
        if cached and self._dm_with(cached, user_id):
            return cached
        listed = await client.list_direct_rooms()
        if isinstance(listed, DirectRoomsResponse):
            for room_id in reversed(listed.rooms.get(user_id, [])):
                if self._dm_with(room_id, user_id):
                    self._direct[user_id] = room_id
                    return room_id
        for room_id in client.rooms:
            if self._dm_with(room_id, user_id):
                self._direct[user_id] = room_id
                return room_id
        created = await client.room_create(
            is_direct=True, invite=[user_id], preset=RoomPreset.trusted_private_chat
        )
        if not isinstance(created, RoomCreateResponse):
            status = getattr(created.transport_response, "status", 0) or 0
            if status == 429 or status >= 500:
                return Transient(f"creating a DM with {user_id}: {created}")
            return Permanent(f"creating a DM with {user_id}: {created}")
        room_id = created.room_id
        log.info("matrix: created DM %s with %s", room_id, user_id)
        self._direct[user_id] = room_id
        await self._remember_direct(user_id, room_id)
        await self._wait_for_room(room_id, 10.0)
        return room_id

    def _dm_with(self, room_id: str, user_id: str) -> bool:
        room = self._client().rooms.get(room_id)
        return room is not None and user_id in room.users and room.member_count <= 2

    async def _remember_direct(self, user_id: str, room_id: str) -> None:
        """Record the DM in the bot's m.direct account data, as Matrix clients do."""
        client = self._client()
        listed = await client.list_direct_rooms()
        rooms = dict(listed.rooms) if isinstance(listed, DirectRoomsResponse) else {}
        if room_id in rooms.get(user_id, []):
            return
        rooms[user_id] = [*rooms.get(user_id, []), room_id]
        path = (
            f"/_matrix/client/v3/user/{urllib.parse.quote(self.user_id, safe='')}"
            "/account_data/m.direct"
        )
        status, _ = await self._request("PUT", path, rooms)
        if status != 200:
            log.warning("matrix: could not record DM %s with %s: %s", room_id, user_id, status)

    async def _wait_for_room(self, room_id: str, within: float) -> bool:
        """A room the bot just created or joined is usable once a sync has shown it."""
        deadline = time.monotonic() + within
        while room_id not in self._client().rooms:
            left = deadline - time.monotonic()
            if left <= 0 or self._task is None:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._sync_tick.wait(), left)
        return True

    # ----------------------------------------------------------------- sending

    def _content(self, part: Reply, target: _ReplyTarget | None, *, first: bool) -> dict[str, Any]:
        formatted = to_matrix_html(part)
        if part.buttons:
            hints = html.escape(buttons_text(part.buttons, self.prefix), quote=False)
            formatted += "<p>" + hints.replace("\n", "<br>") + "</p>"
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": to_text(part, prefix=self.prefix),
            "format": "org.matrix.custom.html",
            "formatted_body": formatted,
            "m.mentions": {},
        }
        if target is not None and target.thread_root:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": target.thread_root,
                "is_falling_back": not first,
                "m.in_reply_to": {"event_id": target.event_id},
            }
        elif target is not None and first:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": target.event_id}}
        return content

    async def _send_content(self, room_id: str, content: dict[str, Any]) -> Outcome:
        client = self.client
        if client is None or not client.access_token:
            return Transient("not connected to Matrix")
        try:
            if client.olm is not None and room_id not in client.rooms:
                unknown = await self._unknown_room(room_id)
                if unknown is not None:
                    return unknown
            response = await client.room_send(
                room_id, "m.room.message", content, ignore_unverified_devices=True
            )
        except (ClientConnectionError, TimeoutError, SendRetryError, LocalProtocolError) as exc:
            # LocalProtocolError: nio lost the room between our check and the send (a kick
            # being synced); the next attempt sees the new state.
            return Transient(f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            log.exception("matrix: sending to %s failed", room_id)
            return Permanent(f"{type(exc).__name__}: {exc}")
        if isinstance(response, RoomSendResponse):
            return Sent(response.event_id)
        return _outcome_of(response, room_id)

    async def _unknown_room(self, room_id: str) -> Outcome | None:
        """nio must know a room's encryption state before sending: not joined → Gone;
        joined but not synced yet → wait for a sync, then Transient if still unknown."""
        joined = await self._client().joined_rooms()
        if isinstance(joined, JoinedRoomsResponse) and room_id not in joined.rooms:
            return Gone("the bot is not in this room")
        if await self._wait_for_room(room_id, 5.0):
            return None
        return Transient("room not synced yet")

    async def _room_creators(self, room_id: str) -> _Creators | None:
        """Creators never change: from the sync cache, else the room state once."""
        if room_id in self._creators:
            return self._creators[room_id]
        response = await self._client().room_get_state(room_id)
        if not isinstance(response, RoomGetStateResponse):
            log.warning("matrix: state of %s unavailable: %s", room_id, response)
            return None
        for event in response.events:
            if event.get("type") == "m.room.create":
                self._creators[room_id] = _creators_from(event)
                return self._creators[room_id]
        return None

    async def _request(
        self, method: str, path: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """A client-server API call nio has no method for."""
        client = self._client()
        headers = {
            "Authorization": f"Bearer {client.access_token}",
            "Content-Type": "application/json",
        }
        response = await client.send(method, path, json.dumps(body), headers)
        try:
            data = await response.json(content_type=None)
        except (ValueError, ClientConnectionError):
            data = {}
        finally:
            response.release()
        return response.status, data if isinstance(data, dict) else {}


class _SyncFailed(Exception):
    def __init__(self, response: Any) -> None:
        self.code = getattr(response, "status_code", None)
        super().__init__(str(response))


def _outcome_of(response: RoomSendError, room_id: str) -> Outcome:
    """A homeserver refusal as a neutral outcome (DESIGN.md)."""
    code = response.status_code or ""
    transport = response.transport_response
    status = transport.status if transport is not None else 0
    message = f"{code or status}: {response.message or ''}".strip()
    if code == "M_LIMIT_EXCEEDED" or status == 429:
        seconds = max((response.retry_after_ms or 5000) / 1000, 0.001)
        log.info("matrix: rate limited sending to %s: retry in %.1f s", room_id, seconds)
        return RetryAfter(seconds)
    if code in ("M_FORBIDDEN", "M_NOT_FOUND") or status in (403, 404):
        return Gone(message)
    if status >= 500 or not status:
        return Transient(message)
    if code in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
        log.error("matrix: the homeserver no longer accepts the bot's login (%s)", room_id)
    return Permanent(message)


def _creators_from(event: dict[str, Any]) -> _Creators:
    content = event.get("content") or {}
    users = {event.get("sender", "")}
    extra = content.get("additional_creators")
    if isinstance(extra, list):
        users.update(u for u in extra if isinstance(u, str))
    predecessor = content.get("predecessor")
    old = predecessor.get("room_id") if isinstance(predecessor, dict) else None
    return _Creators(frozenset(u for u in users if u), str(content.get("room_version", "1")), old)


def _someone_left(events: list[Any], own_user_id: str) -> bool:
    return any(
        isinstance(e, RoomMemberEvent)
        and e.state_key != own_user_id
        and e.membership in ("leave", "ban")
        for e in events
    )


def _strip_reply_fallback(body: str) -> str:
    """Replies quote the original as `> ` lines then a blank line: drop the quote."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith(">"):
        return body
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    if index < len(lines) and not lines[index].strip():
        index += 1
    return "\n".join(lines[index:])


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
