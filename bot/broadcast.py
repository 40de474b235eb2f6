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
from collections import OrderedDict
from dataclasses import dataclass, field

from bot import texts
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


class Pacer:
    """Spaces request starts `1/rate` apart (rate 0: no spacing); can be paused."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self.paused_until = 0.0

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    async def wait(self, abort: asyncio.Event) -> bool:
        """Wait for the next slot; False if `abort` was set meanwhile."""
        now = time.monotonic()
        start = max(now, self._next, self.paused_until)
        self._next = start + self.interval
        if start > now:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(abort.wait(), start - now)
        return not abort.is_set()


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
        self._pacers = {name: Pacer(p.global_rate()) for name, p in platforms.items()}
        self._chat_next: dict[str, dict[str, float]] = {name: {} for name in platforms}
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
                batch = await self.store.outbox.due(name, self.config.concurrency * 4)
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
        timeout = 1.0 if next_at is None else max(0.01, min(1.0, next_at - time.time()))
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)

    async def _run_batch(self, name: str, platform: Platform, batch: list[Delivery]) -> None:
        now = time.monotonic()
        chat_next = self._chat_next[name]
        ready: list[Delivery] = []
        later: dict[int, float] = {}
        seen_chats: set[str] = set()
        for delivery in batch:
            key = delivery.chat.chat_id
            wait = chat_next.get(key, 0.0) - now
            if key in seen_chats or wait > 0:
                # The chat's own limit: leave it for later, do not hold the batch up.
                interval = platform.chat_interval(delivery.chat)
                later[delivery.id] = time.time() + max(wait, interval, 0.05)
                continue
            seen_chats.add(key)
            chat_next[key] = now + platform.chat_interval(delivery.chat)
            ready.append(delivery)
        if later:
            await self.store.outbox.defer(later)
        if not ready:
            return
        await self.store.outbox.mark_sending([d.id for d in ready])
        semaphore = asyncio.Semaphore(self.config.concurrency)
        sent: list[tuple[int, str]] = []
        unsent: list[int] = []

        async def one(delivery: Delivery) -> None:
            async with semaphore:
                if self._stopping or not await self._pacers[name].wait(self._stop_event):
                    unsent.append(delivery.id)  # shutting down: not sent, not attempted
                    return
                outcome = await self._send(platform, delivery)
                if isinstance(outcome, Sent):
                    sent.append((delivery.id, outcome.message_id))
                else:
                    await self._record(name, delivery, outcome)

        await asyncio.gather(*(one(d) for d in ready))
        await self.store.outbox.mark_sent(sent)
        await self.store.outbox.release(unsent)
        self.stats[name].sent += len(sent)

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
