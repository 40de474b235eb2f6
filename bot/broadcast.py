"""The outbox worker: drains due deliveries at each platform's allowed rate.

One worker per platform. It claims a batch (marking it `sending` before any request),
sends concurrently up to a bound while a pacer keeps to the platform's global rate and
each chat's own interval, then records every outcome. After a crash only the claimed
batch can be repeated; nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from bot import metrics, texts
from bot.config import BroadcastConfig
from bot.model import (
    Delivery,
    DeliveryState,
    Gone,
    Moved,
    Outcome,
    Permanent,
    Reply,
    RetryAfter,
    Sent,
    Transient,
)
from bot.platforms.base import Platform
from bot.store import Store
from bot.views import announcement, full, reply

log = logging.getLogger(__name__)

CHAT_TIMES_KEPT = 4096  # per-chat next-send times kept before the expired ones are pruned
CLAIM_PER_SENDER = 4  # a batch claims this many deliveries per concurrent send
# Pace at 97 % of a configured limit: the platform counts arrivals, and network and
# scheduling jitter bunch arrivals up that left here evenly spaced.
HEADROOM = 0.97
# Seconds between looks at an empty outbox: `statement-bot publish` runs in another
# process and cannot wake() the broadcaster, so this bounds its wait (one index probe).
IDLE_POLL = 0.5


def claim_size(config: BroadcastConfig) -> int:
    """Deliveries one batch marks `sending`: the most a crash can make repeat."""
    return config.concurrency * CLAIM_PER_SENDER


class Pacer:
    """Spaces request starts `1/rate` apart (rate 0: no spacing); can be paused.

    Slots lie on a fixed grid, so timer jitter costs no throughput. On top of the grid,
    no more than `rate` requests start in any one-second window: an event loop that
    stalls and then wakes several senders at once cannot burst past the platform's
    limit. A sender whose slot was handed out before a pause queues again behind it,
    so a 429 stops the senders already waiting too, and they resume spaced, not at once.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self.paused_until = 0.0
        capacity = max(1, int(rate)) if rate > 0 else 0
        self._window = capacity / rate if rate > 0 else 0.0
        self._starts: deque[float] = deque(maxlen=capacity)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def _slot(self) -> float:
        slot = max(time.monotonic(), self._next, self.paused_until)
        self._next = slot + self.interval
        return slot

    async def wait(self, abort: asyncio.Event) -> bool:
        """Wait for the next slot; False if `abort` was set meanwhile."""
        slot = self._slot()
        while not abort.is_set():
            if self.paused_until > slot:
                slot = self._slot()
            at = slot
            starts = self._starts
            if starts.maxlen and len(starts) == starts.maxlen:
                at = max(at, starts[0] + self._window)
            now = time.monotonic()
            if at <= now:
                if starts.maxlen:
                    starts.append(now)
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(abort.wait(), at - now)
        return False


@dataclass(slots=True)
class WorkerStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0
    rate_limited: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Broadcaster:
    def __init__(
        self,
        store: Store,
        platforms: dict[str, Platform],
        config: BroadcastConfig | None = None,
    ) -> None:
        self.store = store
        self.platforms = platforms
        self.config = config or BroadcastConfig()
        self.stats: dict[str, WorkerStats] = {name: WorkerStats() for name in platforms}
        self._wake: dict[str, asyncio.Event] = {name: asyncio.Event() for name in platforms}
        self._pacers = {name: Pacer(p.global_rate() * HEADROOM) for name, p in platforms.items()}
        # chat id → monotonic time its next message may start, set when a send starts.
        self._chat_next: dict[str, dict[str, float]] = {name: {} for name in platforms}
        self._prune_at: dict[str, int] = dict.fromkeys(platforms, CHAT_TIMES_KEPT)
        self._clock_offset = time.time() - time.monotonic()  # monotonic → due times in the DB
        # Chats with a delivery deferred for their own limit (see _keep_order).
        self._waiting: dict[str, set[str]] = {name: set() for name in platforms}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._cache: OrderedDict[tuple[str, int], Reply | None] = OrderedDict()
        self.last_loop_at: dict[str, float] = {}

    # ----------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        requeued = await self.store.outbox.requeue_interrupted()
        if requeued:
            log.warning("requeued %d deliveries interrupted by the last stop", requeued)
        for name in self.platforms:
            self._tasks.append(asyncio.create_task(self._worker(name), name=f"broadcast-{name}"))
        self._tasks.append(asyncio.create_task(self._reporter(), name="broadcast-reports"))

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    async def stop(self, grace: float = 8.0) -> None:
        """Take no new batch; let the current one finish (or cancel it after `grace` s)."""
        self._stopping = True
        self._stop_event.set()
        self.wake()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    @property
    def alive(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks)

    # ----------------------------------------------------------------------- worker

    async def _worker(self, name: str) -> None:
        platform = self.platforms[name]
        wake = self._wake[name]
        while not self._stopping:
            self.last_loop_at[name] = time.monotonic()
            try:
                batch = await self.store.outbox.due(name, claim_size(self.config))
                if not batch:
                    await self._idle(name, wake)
                    continue
                await self._run_batch(name, platform, batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcast worker %s failed; retrying in 1 s", name)
                await asyncio.sleep(1.0)

    async def _idle(self, name: str, wake: asyncio.Event) -> None:
        next_at = await self.store.outbox.next_due_at(name)
        timeout = IDLE_POLL if next_at is None else max(0.01, min(IDLE_POLL, next_at - time.time()))
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)

    async def _run_batch(self, name: str, platform: Platform, batch: list[Delivery]) -> None:
        now = time.monotonic()
        chat_next = self._chat_next[name]
        if len(chat_next) > self._prune_at[name]:
            for key in [k for k, at in chat_next.items() if at <= now]:
                del chat_next[key]
            self._prune_at[name] = max(CHAT_TIMES_KEPT, 2 * len(chat_next))
        ready: list[Delivery] = []
        later: dict[int, float] = {}
        planned: set[str] = set()
        waiting = self._waiting[name]
        if len(waiting) > CHAT_TIMES_KEPT:  # chats whose waiting delivery was dropped
            waiting.clear()
        for delivery in sorted(batch, key=lambda d: d.id):  # a chat's oldest first
            # The chat's own limit: leave it for later, do not hold the batch up.
            key = delivery.chat.chat_id
            if key in planned:
                # Another one for a chat this batch sends to: left where it is in the queue,
                # the next batch (after this one's send has started) defers it exactly.
                continue
            if chat_next.get(key, 0.0) > now:  # its last message started too recently
                # Exactly when the chat is free, the same time for all its waiting
                # deliveries: they then go out in their order (by id), not reshuffled.
                later[delivery.id] = self._clock_offset + chat_next[key]
                waiting.add(key)
                continue
            planned.add(key)
            ready.append(delivery)
        if ready and waiting:
            ready = await self._keep_order(name, ready, later, self._clock_offset + now)
        if later:
            await self.store.outbox.defer(later)
        if not ready:
            return
        claimed = await self.store.outbox.mark_sending([d.id for d in ready])
        ready = [d for d in ready if d.id in claimed]
        semaphore = asyncio.Semaphore(self.config.concurrency)
        sent: list[tuple[int, str]] = []
        started: set[int] = set()

        async def one(delivery: Delivery) -> None:
            async with semaphore:
                if self._stopping or not await self._pacers[name].wait(self._stop_event):
                    return  # shutting down: not sent, not attempted
                started.add(delivery.id)
                # From the real start, not the batch's plan: a batch at 30/s lasts seconds.
                interval = platform.chat_interval(delivery.chat) / HEADROOM
                chat_next[delivery.chat.chat_id] = time.monotonic() + interval
                outcome = await metrics.timed_send(name, self._send(platform, delivery))
                if isinstance(outcome, Sent):
                    sent.append((delivery.id, outcome.message_id))
                    if len(sent) >= self.config.concurrency:
                        await flush()
                else:
                    await self._record(name, delivery, outcome)

        async def flush() -> None:
            """Record what was sent so far: a crash then repeats fewer than 2 x concurrency
            messages, not the whole claimed batch (which at 30/s is two seconds of sends)."""
            done = sent[:]
            del sent[:]
            self.stats[name].sent += len(done)
            await asyncio.shield(self.store.outbox.mark_sent(done))  # even if stop cancels

        try:
            results = await asyncio.gather(*(one(d) for d in ready), return_exceptions=True)
        finally:
            # Also when a failure or stop's cancellation cut the batch short: what was sent
            # is recorded, what never started goes back to pending, so only requests that
            # were really in flight stay `sending` (and may repeat after a restart).
            await flush()
            await self.store.outbox.release([d.id for d in ready if d.id not in started])
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _keep_order(
        self, name: str, ready: list[Delivery], later: dict[int, float], due: float
    ) -> list[Delivery]:
        """Hold back a delivery whose chat still has an older one waiting in the queue.

        A deferred delivery re-enters the queue at its new time, behind everything queued
        before then; without this, the chat's next statement could overtake it. Only chats
        that had a delivery deferred are checked (one query), and forgotten once clear.
        """
        waiting = self._waiting[name]
        check = [d.chat.chat_id for d in ready if d.chat.chat_id in waiting]
        if not check:
            return ready
        oldest = await self.store.outbox.oldest_pending(name, check)
        kept: list[Delivery] = []
        for delivery in ready:
            key = delivery.chat.chat_id
            older = oldest.get(key)
            if older is not None and older[0] < delivery.id and older[1] <= due:
                later[delivery.id] = older[1]  # same time, larger id: right behind it
            else:
                if key in waiting and (older is None or older[0] >= delivery.id):
                    waiting.discard(key)
                kept.append(delivery)
        return kept

    async def _send(self, platform: Platform, delivery: Delivery) -> Outcome:
        content = await self._content(delivery)
        if content is None:
            return Permanent("the statement or announcement no longer exists")
        try:
            return await platform.send(delivery.chat, content)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter must not raise; if it does, retry later
            log.exception("adapter %s raised while sending to %s", platform.name, delivery.chat.key)
            return Transient(f"{type(exc).__name__}: {exc}")

    async def _content(self, delivery: Delivery) -> Reply | None:
        if delivery.statement_id is not None:
            key = ("statement", delivery.statement_id)
        else:
            assert delivery.announcement_id is not None
            key = ("announcement", delivery.announcement_id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        content: Reply | None
        if key[0] == "statement":
            st = await self.store.statements.get(key[1])
            content = None if st is None else full(st)
        else:
            body = await self.store.outbox.announcement_text(key[1])
            content = None if body is None else announcement(body)
        self._cache[key] = content
        while len(self._cache) > 64:
            self._cache.popitem(last=False)
        return content

    async def _record(self, name: str, delivery: Delivery, outcome: Outcome) -> None:
        stats = self.stats[name]
        stats.outcomes[type(outcome).__name__] = stats.outcomes.get(type(outcome).__name__, 0) + 1
        chat = delivery.chat
        outbox = self.store.outbox
        match outcome:
            case RetryAfter(seconds=seconds):
                stats.rate_limited += 1
                self._pacers[name].pause(seconds)
                self._chat_next[name][chat.chat_id] = time.monotonic() + seconds
                log.warning(
                    "%s asked to wait %.1f s (delivery %d to %s)",
                    name,
                    seconds,
                    delivery.id,
                    chat.key,
                )
                await outbox.retry(delivery.id, time.time() + seconds, "rate limited", count=False)
            case Gone(reason=reason):
                stats.dropped += 1
                count = await self.store.chats.deactivate(chat.platform, chat.chat_id, reason)
                await outbox.fail(delivery.id, reason, DeliveryState.DROPPED)
                log.warning(
                    "chat %s is gone (%s): %d subscriptions deactivated", chat.key, reason, count
                )
            case Moved(new_chat_id=new_id):
                log.info("chat %s moved to %s:%s", chat.key, chat.platform, new_id)
                await self.store.chats.move(chat.platform, chat.chat_id, new_id)
                await outbox.retry(delivery.id, time.time(), f"moved to {new_id}", count=False)
            case Transient(error=error):
                if delivery.attempts + 1 >= self.config.max_attempts:
                    stats.failed += 1
                    await outbox.fail(delivery.id, error, DeliveryState.FAILED)
                    log.error(
                        "delivery %d to %s failed after %d attempts: %s",
                        delivery.id,
                        chat.key,
                        delivery.attempts + 1,
                        error,
                    )
                else:
                    stats.retried += 1
                    delay = min(
                        self.config.backoff_max,
                        self.config.backoff_base * 2**delivery.attempts,
                    ) * random.uniform(0.5, 1.0)
                    log.warning(
                        "delivery %d to %s failed (%s); retry in %.1f s",
                        delivery.id,
                        chat.key,
                        error,
                        delay,
                    )
                    await outbox.retry(delivery.id, time.time() + delay, error)
            case Permanent(error=error):
                stats.failed += 1
                await outbox.fail(delivery.id, error, DeliveryState.FAILED)
                log.error("delivery %d to %s failed: %s", delivery.id, chat.key, error)
            case _:
                await outbox.retry(delivery.id, time.time() + 1.0, f"unexpected outcome {outcome}")
        self.wake()

    # ----------------------------------------------------------------------- reports

    async def _reporter(self) -> None:
        """Tell the admin who published when a broadcast is done."""
        while not self._stopping:
            try:
                for item in await self.store.outbox.unreported_finished():
                    await self.store.outbox.mark_reported(item.kind, item.item_id)
                    if not item.published_by:
                        continue
                    platform_name, _, user_id = item.published_by.partition(":")
                    platform = self.platforms.get(platform_name)
                    message = texts.BROADCAST_DONE.format(
                        kind=item.kind,
                        id=item.item_id,
                        title=item.title,
                        sent=item.total("sent"),
                        failed=item.total("failed"),
                        dropped=item.total("dropped"),
                    )
                    log.info("%s", message)
                    if platform is not None:
                        await platform.send_direct(user_id, reply(message))
            except Exception:
                log.exception("broadcast report failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_event.wait(), 1.0)
