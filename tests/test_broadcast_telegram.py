"""The broadcaster with the real Telegram adapter against the fake Bot API server.

Why: the scripted platform in test_broadcast.py proves each outcome path, but only the
wire shows that a 429's `retry_after`, a 403, a 400 with `migrate_to_chat_id` or a 502
become the right outcome, and that pacing keeps below Telegram's real flood limits.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from polling import eventually
from telegram_api import FakeTelegram

from bot.broadcast import Broadcaster
from bot.config import BroadcastConfig, TelegramConfig, TelegramRates
from bot.model import Chat, ChatKind, Filter, FilterKind
from bot.platforms.telegram import TelegramPlatform
from bot.statements import parse_statement
from bot.store import Store
from handlers.context import Services

pytestmark = [
    pytest.mark.timeout(20),
    pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"),
]

FAST = BroadcastConfig(max_attempts=4, backoff_base=0.05, backoff_max=0.2, concurrency=8)
# Generous rates: these tests are about outcomes, not pacing.
QUICK = TelegramRates(global_per_second=200.0, private_per_second=20.0, group_per_minute=600.0)


@dataclass
class Harness:
    fake: FakeTelegram
    store: Store
    platform: TelegramPlatform
    broadcaster: Broadcaster

    async def subscribe(self, chat_id: int, kind: str = "private") -> None:
        """The chat exists on the fake and is subscribed to everything in the store."""
        self.fake.add_chat(chat_id, kind, f"chat {chat_id}")
        chat_kind = ChatKind.PRIVATE if kind == "private" else ChatKind.GROUP
        chat = Chat("telegram", str(chat_id), chat_kind, f"chat {chat_id}")
        await self.store.chats.subscribe(chat, Filter(FilterKind.ALL), "all", "test")

    async def publish(self, n: int = 1) -> int:
        result = await self.store.statements.add(statement(n), deliver=True)
        self.broadcaster.wake()
        return result.deliveries

    async def states(self) -> dict[str, int]:
        rows = await self.store.db.fetchall("SELECT state, count(*) FROM deliveries GROUP BY state")
        return {r[0]: r[1] for r in rows}

    async def settled(self, **expected: int) -> dict[str, int]:
        """Wait until the outbox holds exactly these state counts."""
        return await eventually(lambda: self._states_are(expected), timeout=8.0)

    async def _states_are(self, expected: dict[str, int]) -> dict[str, int] | None:
        found = await self.states()
        return found if found == expected else None

    def texts_to(self, chat_id: int) -> list[str]:
        return [str(m["plain"]) for m in self.fake.messages_to(chat_id)]


def statement(n: int) -> Any:
    return parse_statement(
        f"IRAN - Statement number {n}\n\nA paragraph of statement {n}.\n\n#Iran #Drones"
    )


async def start(
    fake: FakeTelegram,
    store: Store,
    rates: TelegramRates = QUICK,
    config: BroadcastConfig = FAST,
) -> Harness:
    telegram = TelegramConfig(token=fake.token, api_url=fake.base_url, poll_timeout=1, rates=rates)
    platform = TelegramPlatform(telegram, Services(store=store, admins=frozenset()))
    await platform.start()
    broadcaster = Broadcaster(store, {"telegram": platform}, config)
    await broadcaster.start()
    return Harness(fake, store, platform, broadcaster)


@pytest_asyncio.fixture
async def make(telegram_api: FakeTelegram, store: Store) -> AsyncIterator[Callable[..., Any]]:
    """`await make(rates=..., config=...)` → a running Harness, stopped after the test."""
    started: list[Harness] = []

    async def factory(**kwargs: Any) -> Harness:
        harness = await start(telegram_api, store, **kwargs)
        started.append(harness)
        return harness

    yield factory
    for harness in started:
        await harness.broadcaster.stop(grace=2.0)
        await harness.platform.stop()


# ------------------------------------------------------------------------------ outcomes


async def test_429_retry_after_is_honoured_and_nothing_is_lost(make) -> None:
    h: Harness = await make()
    for chat_id in (101, 102, 103):
        await h.subscribe(chat_id)
    h.fake.fail_next(
        "sendMessage",
        chat_id=102,
        error_code=429,
        description="Too Many Requests: retry after 1",
        parameters={"retry_after": 1},
    )
    await h.publish()
    await h.settled(sent=3)
    for chat_id in (101, 102, 103):
        assert len(h.texts_to(chat_id)) == 1
    (refused,) = [e for e in h.fake.errors if e["error_code"] == 429]
    (delivered,) = h.fake.messages_to(102)
    assert delivered["ts"] - refused["ts"] >= 0.95  # waited out retry_after
    assert h.broadcaster.stats["telegram"].rate_limited == 1
    # A flood wait is not the delivery's fault: the attempt is given back.
    assert await h.store.db.fetchval("SELECT max(attempts) FROM deliveries") == 1


async def test_403_deactivates_the_chat_and_the_others_are_delivered(make) -> None:
    h: Harness = await make()
    for chat_id in (201, 202, 203):
        await h.subscribe(chat_id)
    h.fake.set_member(202, h.fake.bot_id, "kicked")  # the user blocked the bot
    await h.publish(1)
    await h.settled(sent=2, dropped=1)
    assert h.texts_to(202) == []
    assert len(h.texts_to(201)) == len(h.texts_to(203)) == 1
    blocked = Chat("telegram", "202", ChatKind.PRIVATE)
    assert await h.store.chats.for_chat(blocked) == []
    reason = await h.store.db.fetchval("SELECT last_error FROM deliveries WHERE state='dropped'")
    assert "blocked" in reason
    # The next statement is not even queued for the blocked chat.
    assert await h.publish(2) == 2
    await h.settled(sent=4, dropped=1)


async def test_400_migrated_group_is_delivered_to_the_new_id(make) -> None:
    h: Harness = await make()
    await h.subscribe(301)
    await h.subscribe(-3001, "group")
    h.fake.migrate_group(-3001, -1003001)
    await h.publish()
    await h.settled(sent=2)
    assert len(h.texts_to(-1003001)) == 1
    assert len(h.texts_to(301)) == 1
    moved = await h.store.chats.get("telegram", "-1003001")
    assert moved is not None and moved[1]
    assert await h.store.chats.get("telegram", "-3001") is None
    # Later statements go straight to the supergroup.
    await h.publish(2)
    await h.settled(sent=4)
    assert len(h.texts_to(-1003001)) == 2
    assert not [e for e in h.fake.errors if e["error_code"] == 400][1:]


async def test_5xx_is_retried_with_backoff_then_delivered(make) -> None:
    h: Harness = await make()
    for chat_id in (401, 402):
        await h.subscribe(chat_id)
    h.fake.fail_next("sendMessage", chat_id=401, error_code=502, description="Bad Gateway", times=2)
    h.fake.fail_next(
        "sendMessage", chat_id=402, error_code=500, description="Internal Server Error"
    )
    await h.publish()
    await h.settled(sent=2)
    assert len(h.texts_to(401)) == len(h.texts_to(402)) == 1
    rows = await h.store.db.fetchall(
        "SELECT c.chat_id, d.attempts FROM deliveries d JOIN chats c ON c.id = d.chat_ref"
    )
    assert {r[0]: r[1] for r in rows} == {"401": 3, "402": 2}
    assert h.broadcaster.stats["telegram"].retried == 3


async def test_5xx_beyond_max_attempts_fails_with_the_error_kept(make) -> None:
    h: Harness = await make(config=BroadcastConfig(max_attempts=2, backoff_base=0.02))
    await h.subscribe(451)
    await h.subscribe(452)
    h.fake.fail_chat(451, 503, "Service Unavailable")
    await h.publish()
    await h.settled(sent=1, failed=1)
    row = await h.store.db.fetchone(
        "SELECT attempts, last_error FROM deliveries WHERE state='failed'"
    )
    assert row is not None and row[0] == 2 and "Service Unavailable" in row[1]


async def test_latency_does_not_cap_throughput(make) -> None:
    """Sends overlap up to `concurrency`: 24 sends at 0.2 s each take far less than 4.8 s."""
    h: Harness = await make(config=BroadcastConfig(concurrency=8))
    chats = range(501, 525)
    for chat_id in chats:
        await h.subscribe(chat_id)
    h.fake.latency = 0.2
    started = time.monotonic()
    await h.publish()
    await h.settled(sent=len(chats))
    elapsed = time.monotonic() - started
    assert all(len(h.texts_to(c)) == 1 for c in chats)
    assert elapsed < 2.0, elapsed  # sequential would be 24 x 0.2 = 4.8 s


# ------------------------------------------------------------------------------ real limits


async def test_real_limits_no_429_and_everything_exactly_once(make) -> None:
    """~40 private chats + 3 groups, 3 statements, against the real flood limits.

    The fake enforces 30/s overall, 1/s per private chat and 20/min per group; the
    default rates must keep under all three without ever provoking a 429.
    """
    h: Harness = await make(rates=TelegramRates())
    h.fake.enforce_limits = True
    privates = list(range(601, 641))
    groups = [-6001, -6002, -6003]
    for chat_id in groups:  # first, so their 3 s spacing starts at once
        await h.subscribe(chat_id, "group")
    for chat_id in privates:
        await h.subscribe(chat_id)
    total = 0
    for n in (1, 2, 3):
        total += await h.publish(n)
    assert total == 3 * (len(privates) + len(groups))
    await eventually(lambda: len(h.fake.sent) >= total, timeout=12.0)
    await h.settled(sent=total)
    assert h.fake.too_many_requests == 0, h.fake.errors[:3]
    for chat_id in privates + groups:  # each exactly once, and in the order published
        headlines = [t.split("\n")[0] for t in h.texts_to(chat_id)]
        assert headlines == [f"Statement number {n}" for n in (1, 2, 3)], (chat_id, headlines)
