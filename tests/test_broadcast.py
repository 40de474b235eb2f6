"""The broadcaster against a scripted platform: every outcome, pacing, crash recovery.

The platform here is a stand-in that answers what a test scripts, so each outcome path
is exercised exactly; the real adapters' mapping of errors to outcomes is tested against
the real servers in test_telegram.py and test_matrix.py.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

import pytest
from polling import eventually

from bot.broadcast import Broadcaster
from bot.config import BroadcastConfig
from bot.model import (
    Chat,
    ChatKind,
    Filter,
    FilterKind,
    Gone,
    Moved,
    Outcome,
    Permanent,
    Reply,
    RetryAfter,
    Sent,
    Statement,
    Transient,
    User,
)
from bot.statements import parse_statement
from bot.store import Store

pytestmark = pytest.mark.timeout(30)


class ScriptedPlatform:
    """Records every send; answers from a per-chat script, then Sent."""

    name = "fake"
    prefix = "/"

    def __init__(self, rate: float = 0.0, interval: float = 0.0) -> None:
        self.rate = rate
        self.interval = interval
        self.sent: list[tuple[float, str, str]] = []  # (time, chat id, plain text)
        self.attempts: list[tuple[float, str]] = []
        self.script: dict[str, list[Outcome]] = defaultdict(list)
        self.direct: list[tuple[str, str]] = []
        self.latency = 0.0
        self._ids = 0

    @property
    def connected(self) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, chat: Chat, reply: Reply) -> Outcome:
        self.attempts.append((time.monotonic(), chat.chat_id))
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.script[chat.chat_id]:
            return self.script[chat.chat_id].pop(0)
        self._ids += 1
        self.sent.append((time.monotonic(), chat.chat_id, reply.plain))
        return Sent(str(self._ids))

    async def send_direct(self, user_id: str, reply: Reply) -> Outcome:
        self.direct.append((user_id, reply.plain))
        return Sent("d")

    def global_rate(self) -> float:
        return self.rate

    def chat_interval(self, chat: Chat) -> float:
        return self.interval

    async def sender_is_chat_admin(self, chat: Chat, sender: User) -> bool:
        return True

    async def resolve_chat(self, ref: str, sender: User) -> Chat | str | None:
        return None


def chat(n: int, kind: ChatKind = ChatKind.PRIVATE) -> Chat:
    return Chat("fake", str(n), kind, f"chat {n}")


def statement(title: str = "Down with drones", tags: str = "#Iran") -> Statement:
    return parse_statement(f"IRAN - {title}\n\nA paragraph about {title}.\n\n{tags}")


FAST = BroadcastConfig(max_attempts=3, backoff_base=0.01, backoff_max=0.05, concurrency=8)


async def states(store: Store) -> dict[str, int]:
    rows = await store.db.fetchall("SELECT state, count(*) FROM deliveries GROUP BY state")
    return {r[0]: r[1] for r in rows}


async def subscribe(store: Store, c: Chat, flt: Filter | None = None) -> None:
    flt = flt or Filter(FilterKind.ALL)
    await store.chats.subscribe(c, flt, flt.value or "all", "test")


@pytest.fixture
def platform() -> ScriptedPlatform:
    return ScriptedPlatform()


async def run(store: Store, platform: ScriptedPlatform, config: BroadcastConfig = FAST):
    broadcaster = Broadcaster(store, {"fake": platform}, config)  # type: ignore[dict-item]
    await broadcaster.start()
    return broadcaster


def reached(store: Store, **want: int) -> Callable[[], Awaitable[bool]]:
    """A check for `eventually`: these delivery states have exactly these counts."""

    async def check() -> bool:
        got = await states(store)
        return all(got.get(state, 0) == n for state, n in want.items())

    return check


async def publish_until(
    store: Store, platform: ScriptedPlatform, done: Callable[[], Awaitable[bool]]
) -> Broadcaster:
    """Run a broadcaster, publish one statement, stop it once `done` holds."""
    broadcaster = await run(store, platform)
    try:
        await store.statements.add(statement(), deliver=True)
        broadcaster.wake()
        await eventually(done)
    finally:
        await broadcaster.stop()
    return broadcaster


async def test_each_matching_chat_gets_the_statement_once(store: Store, platform) -> None:
    await subscribe(store, chat(1))
    await subscribe(store, chat(2), Filter(FilterKind.TAG, "iran"))
    await subscribe(store, chat(3), Filter(FilterKind.REGION, "cc:ir"))
    await subscribe(store, chat(4))
    await subscribe(store, chat(4), Filter(FilterKind.TAG, "iran"))  # all + tag: still once
    await subscribe(store, chat(5), Filter(FilterKind.TAG, "mexico"))  # does not match
    broadcaster = await run(store, platform)
    try:
        result = await store.statements.add(statement(), deliver=True, published_by="fake:9")
        assert result.deliveries == 4
        broadcaster.wake()
        await eventually(lambda: len(platform.sent) == 4)
        await eventually(reached(store, sent=4))
    finally:
        await broadcaster.stop()
    assert sorted(c for _, c, _ in platform.sent) == ["1", "2", "3", "4"]
    assert all("Down with drones" in text for _, _, text in platform.sent)
    rows = await store.db.fetchall("SELECT message_id FROM deliveries WHERE state = 'sent'")
    assert all(r[0] for r in rows)


async def test_retry_after_waits_and_does_not_count_an_attempt(store: Store, platform) -> None:
    await subscribe(store, chat(1))
    platform.script["1"] = [RetryAfter(0.4)]
    broadcaster = await publish_until(store, platform, reached(store, sent=1))
    first_try, _ = platform.attempts[0]
    sent_at = platform.sent[0][0]
    assert sent_at - first_try >= 0.35  # waited out the platform's retry_after
    attempts = await store.db.fetchval("SELECT attempts FROM deliveries")
    assert attempts == 1
    assert broadcaster.stats["fake"].rate_limited == 1


async def test_gone_deactivates_the_chat_and_drops_its_pending(store: Store, platform) -> None:
    await subscribe(store, chat(1))
    await subscribe(store, chat(2))
    platform.script["1"] = [Gone("bot was blocked by the user")]
    await publish_until(store, platform, reached(store, dropped=1, sent=1))
    subs = await store.chats.for_chat(chat(1))
    assert subs == []  # deactivated
    inactive = await store.chats.for_chat(chat(1), active_only=False)
    assert len(inactive) == 1 and not inactive[0].active
    # A later statement does not go to the gone chat.
    result = await store.statements.add(statement("Second"), deliver=True)
    assert result.deliveries == 1


async def test_moved_updates_the_chat_and_delivers_there(store: Store, platform) -> None:
    await subscribe(store, chat(-5, ChatKind.GROUP))
    platform.script["-5"] = [Moved("-1005")]
    await publish_until(store, platform, reached(store, sent=1))
    assert [c for _, c, _ in platform.sent] == ["-1005"]
    assert await store.chats.get("fake", "-1005") is not None
    assert len(await store.chats.for_chat(Chat("fake", "-1005", ChatKind.GROUP))) == 1


async def test_transient_errors_retry_with_backoff_then_fail(store: Store, platform) -> None:
    await subscribe(store, chat(1))
    await subscribe(store, chat(2))
    platform.script["1"] = [Transient("timeout"), Transient("502")]  # then succeeds
    platform.script["2"] = [Transient("timeout")] * 5  # never succeeds within 3 attempts
    await publish_until(store, platform, reached(store, sent=1, failed=1))
    row = await store.db.fetchone(
        "SELECT d.attempts, d.last_error FROM deliveries d JOIN chats c ON c.id = d.chat_ref "
        "WHERE c.chat_id = '2'"
    )
    assert row is not None and row[0] == 3 and row[1] == "timeout"
    sent_attempts = await store.db.fetchval(
        "SELECT d.attempts FROM deliveries d JOIN chats c ON c.id = d.chat_ref "
        "WHERE c.chat_id = '1'"
    )
    assert sent_attempts == 3


async def test_permanent_error_fails_at_once_keeping_the_error(store: Store, platform) -> None:
    await subscribe(store, chat(1))
    platform.script["1"] = [Permanent("message is too long")]
    await publish_until(store, platform, reached(store, failed=1))
    assert await store.db.fetchval("SELECT last_error FROM deliveries") == "message is too long"
    assert len(platform.attempts) == 1


async def test_interrupted_sends_are_resumed_after_a_restart(store: Store, platform) -> None:
    for n in range(1, 6):
        await subscribe(store, chat(n))
    await store.statements.add(statement(), deliver=True)
    due = await store.outbox.due("fake", 10)
    await store.outbox.mark_sending([d.id for d in due[:3]])  # the crash happened here
    broadcaster = await run(store, platform)
    try:
        await eventually(reached(store, sent=5))
    finally:
        await broadcaster.stop()
    assert sorted(c for _, c, _ in platform.sent) == ["1", "2", "3", "4", "5"]


async def test_one_chat_is_not_sent_to_faster_than_its_interval(store: Store) -> None:
    platform = ScriptedPlatform(interval=0.3)
    await subscribe(store, chat(1))
    broadcaster = await run(store, platform)
    try:
        await store.statements.add(statement("One"), deliver=True)
        await store.statements.add(statement("Two"), deliver=True)
        await store.outbox.announce("Three", "test", Filter(FilterKind.ALL))
        broadcaster.wake()
        await eventually(lambda: len(platform.sent) == 3)
    finally:
        await broadcaster.stop()
    times = [t for t, _, _ in platform.sent]
    assert all(b - a >= 0.28 for a, b in itertools.pairwise(times))


async def test_global_rate_is_respected(store: Store) -> None:
    platform = ScriptedPlatform(rate=40.0)
    for n in range(30):
        await subscribe(store, chat(n))
    broadcaster = await run(store, platform)
    try:
        await store.statements.add(statement(), deliver=True)
        broadcaster.wake()
        await eventually(lambda: len(platform.sent) == 30)
    finally:
        await broadcaster.stop()
    starts = sorted(t for t, _ in platform.attempts)
    # No 1-second window holds more than the configured rate (plus the first slot).
    for i, t in enumerate(starts):
        in_window = [s for s in starts[i:] if s - t < 1.0]
        assert len(in_window) <= 41


async def test_the_publisher_gets_a_report_when_done(store: Store, platform) -> None:
    await subscribe(store, chat(1))
    await subscribe(store, chat(2))
    platform.script["2"] = [Gone("kicked")]
    broadcaster = await run(store, platform)
    try:
        result = await store.statements.add(statement(), deliver=True, published_by="fake:77")
        broadcaster.wake()
        await eventually(lambda: len(platform.direct) == 1, timeout=5)
    finally:
        await broadcaster.stop()
    user, text = platform.direct[0]
    assert user == "77"
    assert f"#{result.statement.id}" in text
    assert "1 delivered" in text and "1 dropped" in text


async def test_stop_is_prompt_even_with_a_backlog(store: Store) -> None:
    platform = ScriptedPlatform(rate=5.0)
    platform.latency = 0.05
    for n in range(50):
        await subscribe(store, chat(n))
    broadcaster = await run(store, platform)
    await store.statements.add(statement(), deliver=True)
    broadcaster.wake()
    await eventually(lambda: len(platform.sent) >= 2)
    started = time.monotonic()
    await broadcaster.stop(grace=2.0)
    assert time.monotonic() - started < 3.0
    s = await states(store)
    assert s.get("pending", 0) + s.get("sending", 0) > 0  # the rest waits for the next start
    # Nothing lost: a new broadcaster finishes the job.
    platform.rate = 0.0
    second = await run(store, ScriptedPlatform())
    try:
        await eventually(reached(store, sent=50), timeout=15)
    finally:
        await second.stop()
