"""Broadcast benchmark: the real broadcaster and Telegram adapter against the fake Bot API.

    .venv/bin/python benchmarks/broadcast.py                   # every scenario, ~5 min
    .venv/bin/python benchmarks/broadcast.py --scenarios limits --duration 340   # all 10,000
    .venv/bin/python benchmarks/broadcast.py --scenarios unlimited,memory

Scenarios (issue 5 targets in brackets):
  limits     --count private chats (10,000), the fake enforcing Telegram's real limits
             (30/s overall, 1/s per chat), the bot at its default rates: messages/s
             against the configured 30/s [>= 95 %], 429s provoked [0]. All 10,000 take
             5.5 minutes, so --duration caps each run and the steady rate is measured.
  unlimited  paid-broadcast scale: no pacing, the fake without limits: messages per CPU
             second of the bot process [>= 1,000/s on one core].
  core       the broadcaster and store alone, with a platform that answers at once:
             their own ceiling, whatever the adapter costs.
  memory     --memory-count subscriptions (100,000), limits off: peak RSS of the bot
             process over publish and the broadcast [< 200 MB].
Every scenario reports the time from confirm (`statements.add(deliver=True)` +
`broadcaster.wake()`) to the first message reaching the server [< 1 s].

Three processes, so each figure is the bot's own: this one (prepares the databases,
orchestrates, prints), the fake Telegram server (tests/telegram_api.py; its records
drained into counters so its memory stays flat), and the bot (store + TelegramPlatform
+ Broadcaster on one event loop, as `statement-bot serve` runs them), whose RSS and CPU
time are reported. The machine's other load shows in wall-clock rates, less in CPU time.

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "statements" / "iran-down-with-us-drones.txt"
PRIVATE_BASE = 1_000_000_000  # chat ids of the benchmark's readers: PRIVATE_BASE + n
TOKEN = "123456:BENCH"
OFF = {"global_per_second": 0.0, "private_per_second": 0.0, "group_per_minute": 0.0}

# ------------------------------------------------------------------------ fake server process


class Recorder:
    """Drains the fake's per-request records into counters, so a 100,000-message run keeps
    the fake's memory (and its garbage collector's pauses) small."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self.times: list[float] = []
        self.per_chat: collections.Counter[int] = collections.Counter()

    def drain(self) -> None:
        for record in self.fake.sent:
            if record["method"] == "sendMessage":
                self.times.append(record["ts"])
                self.per_chat[record["chat_id"]] += 1
        self.fake.sent.clear()
        self.fake.calls.clear()
        self.fake.errors.clear()
        self.fake._messages.clear()

    def reset(self) -> None:
        self.drain()
        self.times.clear()
        self.per_chat.clear()
        self.fake.too_many_requests = 0

    def stats(self) -> dict[str, Any]:
        self.drain()
        return summary(self.times, self.per_chat) | {
            "too_many_requests": self.fake.too_many_requests,
            "cpu": time.process_time(),
        }


def summary(times: list[float], per_chat: collections.Counter[Any]) -> dict[str, Any]:
    """Count, first/last arrival, duplicates and the busiest one-second window."""
    window_max, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 1.0:
            lo += 1
        window_max = max(window_max, hi - lo + 1)
    return {
        "sent": len(times),
        "first": times[0] if times else None,
        "last": times[-1] if times else None,
        "duplicates": sum(n - 1 for n in per_chat.values() if n > 1),
        "max_per_second": window_max,
    }


def fake_server_main(conn: Connection) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    asyncio.run(_fake_server(conn))


async def _fake_server(conn: Connection) -> None:
    from telegram_api import FakeTelegram

    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    recorder = Recorder(fake)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def on_command() -> None:
        command, *args = conn.recv()
        answer: Any = None
        if command == "chats":
            for n in range(1, args[0] + 1):
                if PRIVATE_BASE + n not in fake._chats:
                    fake.add_chat(PRIVATE_BASE + n, "private", f"Reader {n}")
            gc.freeze()  # a 100,000-chat world: not rescanned by every collection
        elif command == "limits":
            fake.enforce_limits = bool(args[0])
        elif command == "reset":
            recorder.reset()
        elif command == "stats":
            answer = recorder.stats()
        elif command == "stop":
            done.set()
        conn.send(answer)

    async def drain_often() -> None:
        while True:
            await asyncio.sleep(0.25)
            recorder.drain()

    loop.add_reader(conn.fileno(), on_command)
    drainer = asyncio.create_task(drain_often())
    gc.freeze()  # the fake's start-up objects: out of the collector's way
    conn.send(fake.base_url)
    await done.wait()
    drainer.cancel()
    loop.remove_reader(conn.fileno())
    await fake.stop()


class FakeProcess:
    """The fake Telegram server in its own process, driven over a pipe."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=fake_server_main, args=(child,), daemon=True)
        self.process.start()
        self.base_url: str = self.conn.recv()

    def call(self, *command: Any) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def close(self) -> None:
        self.call("stop")
        self.process.join(5)


# ------------------------------------------------------------------------ bot process


@dataclass
class BotRun:
    db: str
    base_url: str
    rates: dict[str, float]
    concurrency: int
    adapter: str  # ptb (the shipped TelegramPlatform) | null (no platform cost)
    title: str


class NullPlatform:
    """Answers Sent at once: what the broadcaster and the store cost on their own."""

    name = "telegram"
    prefix = "/"
    connected = True

    def __init__(self) -> None:
        self.times: list[float] = []
        self.per_chat: collections.Counter[str] = collections.Counter()

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, chat: Any, reply: Any) -> Any:
        from bot.model import Sent

        self.times.append(time.monotonic())
        self.per_chat[chat.chat_id] += 1
        return Sent(str(len(self.times)))

    async def send_direct(self, user_id: str, reply: Any) -> Any:
        from bot.model import Sent

        return Sent("0")

    def global_rate(self) -> float:
        return 0.0

    def chat_interval(self, chat: Any) -> float:
        return 0.0

    async def sender_is_chat_admin(self, chat: Any, sender: Any) -> bool:
        return False

    async def resolve_chat(self, ref: str, sender: Any) -> Any:
        return None


def bot_main(conn: Connection, run: BotRun) -> None:
    asyncio.run(_bot(conn, run))


async def _bot(conn: Connection, run: BotRun) -> None:
    from dataclasses import replace

    from bot.broadcast import Broadcaster
    from bot.config import BroadcastConfig, TelegramConfig, TelegramRates
    from bot.platforms.telegram import TelegramPlatform
    from bot.statements import parse_file
    from bot.store import Store
    from handlers.context import Services

    store = await Store.open(run.db)
    platform: Any
    if run.adapter == "null":
        platform = NullPlatform()
    else:
        rates = TelegramRates(**run.rates)
        config = TelegramConfig(token=TOKEN, api_url=run.base_url, poll_timeout=10, rates=rates)
        platform = TelegramPlatform(config, Services(store=store, admins=frozenset()))
    await platform.start()
    broadcaster = Broadcaster(
        store, {"telegram": platform}, BroadcastConfig(concurrency=run.concurrency)
    )
    await broadcaster.start()
    statement = replace(parse_file(SAMPLE), title=run.title)
    await asyncio.sleep(1.5)  # idle, as a running service is when an admin confirms
    rss_idle = _rss_now()
    cpu0 = time.process_time()
    confirmed = time.monotonic()
    result = await store.statements.add(statement, deliver=True)
    broadcaster.wake()
    queued = time.monotonic()
    conn.send({"confirmed": confirmed, "queued": queued, "deliveries": result.deliveries})

    stop = asyncio.Event()

    def on_command() -> None:
        if conn.recv() == "progress":
            conn.send(broadcaster.stats["telegram"].sent)
        else:
            stop.set()

    asyncio.get_running_loop().add_reader(conn.fileno(), on_command)
    await stop.wait()
    cpu = time.process_time() - cpu0
    await broadcaster.stop()
    await platform.stop()
    await store.close()
    report = {
        "cpu": cpu,
        "rss_idle_mb": rss_idle,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if isinstance(platform, NullPlatform):
        report["sends"] = summary(platform.times, platform.per_chat)
    conn.send(report)


def _rss_now() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ------------------------------------------------------------------------ orchestration


@dataclass
class Result:
    name: str
    subscriptions: int
    adapter: str
    sends: dict[str, Any]  # what arrived: count, first/last, duplicates, 429s
    bot: dict[str, Any]
    started: dict[str, Any]
    limit: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        s = self.sends
        if s["sent"] < 2:
            return 0.0
        return (s["sent"] - 1) / (s["last"] - s["first"])

    @property
    def first_delivery(self) -> float | None:
        first = self.sends["first"]
        return None if first is None else first - self.started["confirmed"]


def prepare_db(path: str, count: int) -> None:
    """`count` private chats subscribed to everything, bulk-inserted (setup, not measured)."""
    from bot.store import Store

    async def fill() -> None:
        store = await Store.open(path)
        now = int(time.time())
        async with store.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO chats (id, platform, chat_id, kind, title, active, created_at, "
                "updated_at) VALUES (?, 'telegram', ?, 'private', ?, 1, ?, ?)",
                ((n, str(PRIVATE_BASE + n), f"Reader {n}", now, now) for n in range(1, count + 1)),
            )
            await conn.executemany(
                "INSERT INTO subscriptions (chat_ref, filter_kind, filter_key, filter_name, "
                "created_by, created_at) VALUES (?, 'all', '', 'all', 'bench', ?)",
                ((n, now) for n in range(1, count + 1)),
            )
        await store.close()

    asyncio.run(fill())


def run_scenario(
    name: str,
    fake: FakeProcess,
    count: int,
    *,
    adapter: str,
    enforce: bool,
    rates: dict[str, float],
    concurrency: int,
    duration: float,
    limit: float | None = None,
) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-broadcast-") as tmp:
        db = str(Path(tmp) / "bot.db")
        prepare_db(db, count)
        if adapter != "null":
            fake.call("chats", count)
            fake.call("limits", enforce)
            fake.call("reset")
        ctx = multiprocessing.get_context("spawn")
        conn, child = ctx.Pipe()
        title = f"Benchmark {name} {time.time()}"
        run = BotRun(db, fake.base_url, rates, concurrency, adapter, title)
        process = ctx.Process(target=bot_main, args=(child, run), daemon=True)
        process.start()
        started = conn.recv()
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            time.sleep(0.5)
            conn.send("progress")
            if conn.recv() >= started["deliveries"]:
                break
        conn.send("stop")
        bot = conn.recv()
        process.join(10)
        if adapter == "null":
            sends = bot.pop("sends") | {"too_many_requests": 0, "fake_cpu": 0.0}
        else:
            sends = fake.call("stats")
            sends["fake_cpu"] = sends.pop("cpu")
    result = Result(name, count, adapter, sends, bot, started, limit)
    print(f"  {describe(result)}", flush=True)
    return result


def describe(r: Result) -> str:
    return (
        f"{r.sends['sent']:,}/{r.started['deliveries']:,} sent, {r.rate:,.1f} msg/s, "
        f"{r.sends['too_many_requests']} x 429, {r.sends['duplicates']} duplicates, "
        f"bot CPU {r.bot['cpu']:.1f} s, peak RSS {r.bot['rss_peak_mb']:.0f} MB"
    )


def print_table(results: list[Result]) -> None:
    print()
    print(f"{'figure':<45}{'measured':<20}target")
    print("-" * 74)
    for r in results:
        s, bot = r.sends, r.bot
        print(f"[{r.name}] {r.subscriptions:,} subscriptions, adapter {r.adapter}")
        rows = [
            ("messages delivered", f"{s['sent']:,} / {r.started['deliveries']:,}", ""),
            ("messages/s (arrivals, first to last)", f"{r.rate:,.1f}", ""),
        ]
        if r.limit:
            rows += [
                ("  of the configured limit", f"{100 * r.rate / r.limit:.1f} %", ">= 95 %"),
                ("  most arrivals in any 1 s", f"{s['max_per_second']}", "(fake: 30 / 0.95 s)"),
                ("429 answers provoked", f"{s['too_many_requests']}", "0"),
            ]
        else:
            per_cpu = s["sent"] / bot["cpu"] if bot["cpu"] else 0.0
            rows += [
                ("messages per bot CPU-second", f"{per_cpu:,.0f}", ">= 1,000"),
                ("  bot / fake CPU seconds", f"{bot['cpu']:.1f} / {s['fake_cpu']:.1f}", ""),
            ]
        queued = r.started["queued"] - r.started["confirmed"]
        first = r.first_delivery
        rows += [
            ("duplicates", f"{s['duplicates']}", "0"),
            ("confirm -> deliveries committed", f"{queued:.3f} s", ""),
            ("confirm -> first delivery", "-" if first is None else f"{first:.3f} s", "< 1 s"),
            (
                "bot RSS idle / peak",
                f"{bot['rss_idle_mb']:.0f} / {bot['rss_peak_mb']:.0f} MB",
                "< 200 MB",
            ),
        ]
        for label, value, target in rows:
            print(f"  {label:<43}{value:<20}{target}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="limits,unlimited,core,memory")
    parser.add_argument("--count", type=int, default=10_000, help="chats for limits/unlimited")
    parser.add_argument("--memory-count", type=int, default=100_000, help="chats for core/memory")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="cap of each run in seconds (default 60)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="broadcast.concurrency")
    args = parser.parse_args()
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(wanted) - {"limits", "unlimited", "core", "memory"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    fake = FakeProcess()
    common = {"concurrency": args.concurrency, "duration": args.duration}
    results: list[Result] = []
    try:
        if "limits" in wanted:
            print(f"limits: {args.count:,} chats at Telegram's real limits")
            results.append(
                run_scenario(
                    "limits",
                    fake,
                    args.count,
                    adapter="ptb",
                    enforce=True,
                    rates={},
                    limit=30.0,
                    **common,
                )
            )
        if "unlimited" in wanted:
            print(f"unlimited: {args.count:,} chats, no pacing, no server limits")
            results.append(
                run_scenario(
                    "unlimited",
                    fake,
                    args.count,
                    adapter="ptb",
                    enforce=False,
                    rates=OFF,
                    **common,
                )
            )
        if "core" in wanted:
            print(f"core: {args.memory_count:,} chats, a platform that answers at once")
            results.append(
                run_scenario(
                    "core",
                    fake,
                    args.memory_count,
                    adapter="null",
                    enforce=False,
                    rates=OFF,
                    **common,
                )
            )
        if "memory" in wanted:
            print(f"memory: {args.memory_count:,} chats, no pacing, no server limits")
            results.append(
                run_scenario(
                    "memory",
                    fake,
                    args.memory_count,
                    adapter="ptb",
                    enforce=False,
                    rates=OFF,
                    **common,
                )
            )
    finally:
        fake.close()
    print_table(results)


if __name__ == "__main__":
    main()
