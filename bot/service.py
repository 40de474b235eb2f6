"""Starts and stops everything, in order, on one event loop.

Start: database lock → store (migrations) → handlers' services → platforms →
broadcaster → feed poller (`[feeds] enabled`) → inbox watcher (`[inbox] dir`) → HTTP
endpoint (when `http.listen` is set).
Stop (SIGTERM, SIGINT, or the console's Ctrl-D): the HTTP endpoint closes, the sources
stop adding statements, the broadcaster lets in-flight sends finish (it needs the
platforms' connections), platforms stop, the store closes, the lock is released.
Within 10 s. A start that fails half-way stops what it had started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from bot.broadcast import Broadcaster
from bot.config import Config, ConfigError
from bot.feeds import FeedPoller
from bot.http import HttpEndpoint
from bot.inbox import InboxWatcher
from bot.platforms.base import Platform
from bot.platforms.console import CONSOLE_ADMIN, ConsolePlatform
from bot.store import Store
from bot.store.lock import DatabaseLock
from handlers.context import PendingActions, Services, Throttle

log = logging.getLogger(__name__)


def build_services(config: Config, store: Store, *, console: bool) -> Services:
    admins = set(config.admins)
    if console:
        admins.add(CONSOLE_ADMIN)
    return Services(
        store=store,
        admins=frozenset(admins),
        page_size=config.commands.page_size,
        throttle=Throttle(config.commands.rate_per_minute),
        pending=PendingActions(config.broadcast.confirm_timeout),
        feeds=config.feeds,
    )


def build_platforms(config: Config, services: Services) -> dict[str, Platform]:
    platforms: dict[str, Platform] = {}
    if config.telegram.enabled:
        from bot.platforms.telegram import TelegramPlatform

        platforms["telegram"] = TelegramPlatform(config.telegram, services)
    if config.matrix.enabled:
        from bot.platforms.matrix import MatrixPlatform

        platforms["matrix"] = MatrixPlatform(config.matrix, services, config.database)
    return platforms


class Service:
    def __init__(self, config: Config, *, console: bool | None = None) -> None:
        self.config = config
        self.console_requested = console
        self.stopping = asyncio.Event()
        self.store: Store | None = None
        self.platforms: dict[str, Platform] = {}
        self.broadcaster: Broadcaster | None = None
        self.services: Services | None = None
        self.lock: DatabaseLock | None = None
        self.http: HttpEndpoint | None = None
        self.feeds: FeedPoller | None = None
        self.inbox: InboxWatcher | None = None

    def request_stop(self) -> None:
        self.stopping.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self.stopping.wait()
        finally:
            await self.shutdown()
        return 0

    async def start(self) -> None:
        config = self.config
        # Two bots on one database would both broadcast; restore must not swap it under us.
        self.lock = await asyncio.to_thread(DatabaseLock.acquire, config.database)
        self.store = await Store.open(config.database)
        wants_console = self.console_requested
        if wants_console is None:
            wants_console = not (config.telegram.enabled or config.matrix.enabled)
        self.services = build_services(config, self.store, console=wants_console)
        self.platforms = build_platforms(config, self.services)
        console: ConsolePlatform | None = None
        if wants_console:
            console = ConsolePlatform(self.services)
            self.platforms["console"] = console
        self.broadcaster = Broadcaster(self.store, self.platforms, config.broadcast)
        self.services.on_enqueued = self.broadcaster.wake
        for name, platform in self.platforms.items():
            await platform.start()
            log.info("platform %s started", name)
        await self.broadcaster.start()
        if config.feeds.enabled:
            self.feeds = FeedPoller(self.store, config.feeds, on_published=self.broadcaster.wake)
            await self.feeds.start()
        if config.inbox.dir:
            self.inbox = InboxWatcher(
                self.store,
                config.inbox.dir,
                interval=config.inbox.interval,
                on_published=self.broadcaster.wake,
            )
            try:
                await self.inbox.start()
            except OSError as exc:
                raise ConfigError(
                    "inbox.dir", f"cannot use {config.inbox.dir!r}: {exc.strerror or exc}"
                ) from None
        if config.http.listen:
            self.http = HttpEndpoint(self, config.http.listen)
            await self.http.start()
        log.info(
            "statement-bot running with %s; database %s",
            ", ".join(self.platforms) or "no platform",
            config.database,
        )
        if console is not None:
            task = asyncio.create_task(console.run_stdin(), name="console")
            task.add_done_callback(lambda _: self.request_stop())

    async def shutdown(self) -> None:
        log.info("shutting down")
        if self.http is not None:
            await self.http.stop()
        for source in (self.inbox, self.feeds):
            if source is not None:
                try:
                    await asyncio.wait_for(source.stop(), 5.0)
                except Exception:
                    log.exception("%s did not stop cleanly", type(source).__name__)
        # The broadcaster first: its in-flight sends need the platforms' connections.
        if self.broadcaster is not None:
            await self.broadcaster.stop(grace=4.0)
        for name, platform in self.platforms.items():
            try:
                await asyncio.wait_for(platform.stop(), 4.0)
            except Exception:
                log.exception("platform %s did not stop cleanly", name)
        if self.store is not None:
            await self.store.close()
        if self.lock is not None:
            self.lock.release()
        log.info("stopped")
