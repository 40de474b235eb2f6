"""Kill the running service in the middle of a broadcast; restart it; nothing is lost.

Why as processes: crash safety is a property of what is on disk when a process dies
at an arbitrary moment, so the real `statement-bot serve` runs as a subprocess against
the fake Telegram server (which lives in this test's event loop and counts what
arrives), the statement comes in through `statement-bot publish FILE --yes` as an
operator would send it, and the service is killed with SIGKILL, or stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from polling import eventually
from telegram_api import FakeTelegram

from bot.broadcast import claim_size
from bot.config import BroadcastConfig
from bot.model import Chat, ChatKind, Filter, FilterKind
from bot.store import Store

pytestmark = [pytest.mark.timeout(60)]

BIN = Path(sys.executable).parent / "statement-bot"
SUBSCRIBERS = 300
FIRST_CHAT = 700_001
CHATS = range(FIRST_CHAT, FIRST_CHAT + SUBSCRIBERS)
CONCURRENCY = BroadcastConfig().concurrency  # the service runs with the default
STATEMENT = """IRAN - A statement that must reach everyone

Even when the bot is killed while it is sending it.

#Iran #Test
"""


@dataclass
class World:
    fake: FakeTelegram
    db: Path
    statement: Path
    env: dict[str, str]
    log: Path

    async def serve(self) -> asyncio.subprocess.Process:
        with self.log.open("ab") as log:
            return await asyncio.create_subprocess_exec(
                str(BIN), "serve", env=self.env, stdout=log, stderr=log
            )

    async def publish(self) -> None:
        process = await asyncio.create_subprocess_exec(
            str(BIN),
            "publish",
            str(self.statement),
            "--yes",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
        assert f"{SUBSCRIBERS} deliveries queued" in output.decode(), output.decode()

    def received(self) -> Counter[int]:
        """Messages that reached each subscriber (the fake's own record)."""
        return Counter(
            s["chat_id"]
            for s in self.fake.sent
            if s["method"] == "sendMessage" and s["chat_id"] in CHATS
        )

    async def errors(self) -> list[str]:
        """Errors recorded on deliveries (a failed attempt leaves one)."""
        store = await Store.open(self.db)
        try:
            rows = await store.db.fetchall(
                "SELECT last_error FROM deliveries WHERE last_error IS NOT NULL"
            )
        finally:
            await store.close()
        return [r[0] for r in rows]

    async def outbox(self) -> dict[str, int]:
        store = await Store.open(self.db)
        try:
            rows = await store.db.fetchall("SELECT state, count(*) FROM deliveries GROUP BY state")
        finally:
            await store.close()
        return {r[0]: r[1] for r in rows}


async def drained(world: World) -> bool:
    states = await world.outbox()
    return states.get("pending", 0) + states.get("sending", 0) == 0


async def stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 15)


@pytest.fixture
async def world(telegram_api: FakeTelegram, tmp_path: Path) -> World:
    """300 private chats subscribed to everything, in the store and on the fake."""
    fake = telegram_api
    fake.latency = 0.02  # a real round trip's worth: the broadcast takes a while
    db = tmp_path / "bot.db"
    store = await Store.open(db)
    try:
        for chat_id in CHATS:
            fake.add_chat(chat_id, "private", f"Reader {chat_id}")
            chat = Chat("telegram", str(chat_id), ChatKind.PRIVATE, f"Reader {chat_id}")
            await store.chats.subscribe(chat, Filter(FilterKind.ALL), "all", "test")
    finally:
        await store.close()
    statement = tmp_path / "statement.txt"
    statement.write_text(STATEMENT, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMENT_BOT_")}
    env |= {
        "STATEMENT_BOT_DATABASE": str(db),
        "STATEMENT_BOT_TELEGRAM_TOKEN": fake.token,
        "STATEMENT_BOT_TELEGRAM_API_URL": fake.base_url,
        "STATEMENT_BOT_TELEGRAM_POLL_TIMEOUT": "1",
        "STATEMENT_BOT_TELEGRAM_RATES_GLOBAL_PER_SECOND": "150",
        "STATEMENT_BOT_LOG_FORMAT": "text",
    }
    return World(fake, db, statement, env, tmp_path / "service.log")


async def test_sigkill_mid_broadcast_loses_nothing(world: World) -> None:
    service = await world.serve()
    try:
        await world.publish()
        await eventually(
            lambda: sum(world.received().values()) >= SUBSCRIBERS // 3, 15, "a third delivered"
        )
        service.kill()  # SIGKILL: no handler runs, whatever is in flight is cut off
        assert await service.wait() == -signal.SIGKILL
        at_kill = sum(world.received().values())
        assert at_kill < SUBSCRIBERS, "the broadcast finished before the kill"
        interrupted = await world.outbox()
        assert interrupted.get("pending", 0) + interrupted.get("sending", 0) > 0

        service = await world.serve()
        await eventually(lambda: drained(world), 20, "the outbox drained after the restart")
    finally:
        await stop(service)

    received = world.received()
    assert set(received) == set(CHATS), f"{SUBSCRIBERS - len(received)} subscribers missed it"
    duplicates = sum(received.values()) - SUBSCRIBERS
    # Only deliveries marked `sending` (one claimed batch) can have reached Telegram
    # without the bot recording it.
    assert duplicates <= claim_size(BroadcastConfig(concurrency=CONCURRENCY)), duplicates
    assert await world.outbox() == {"sent": SUBSCRIBERS}
    assert "requeued" in world.log.read_text() or interrupted.get("sending", 0) == 0


async def test_sigterm_mid_broadcast_exits_cleanly_and_resumes_without_duplicates(
    world: World,
) -> None:
    service = await world.serve()
    try:
        await world.publish()
        await eventually(
            lambda: sum(world.received().values()) >= SUBSCRIBERS // 3, 15, "a third delivered"
        )
        started = time.monotonic()
        service.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(service.wait(), 12)
        took = time.monotonic() - started
        assert code == 0, world.log.read_text()[-3000:]
        assert took < 10, took
        at_stop = sum(world.received().values())
        assert at_stop < SUBSCRIBERS, "the broadcast finished before the stop"
        stopped = await world.outbox()
        assert stopped.get("sending", 0) == 0, stopped  # every claim sent or given back
        # In-flight sends finished; none was cut off (which could repeat it) or failed.
        assert await world.errors() == [], "sends failed during a graceful stop"

        service = await world.serve()
        await eventually(lambda: drained(world), 20, "the outbox drained after the restart")
    finally:
        await stop(service)

    received = world.received()
    assert set(received) == set(CHATS)
    assert max(received.values()) == 1, [c for c, n in received.items() if n > 1]
    assert await world.outbox() == {"sent": SUBSCRIBERS}
