"""The operator's HTTP endpoint: `/healthz` and `/metrics` (aiohttp, same event loop).

Why in-process and on 127.0.0.1 by default: the health of a bot is the state of its own
objects (is the broadcaster task alive, is Matrix syncing), which no outside probe can
see; and neither answer is for the public internet. Put it on another address only
behind something that restricts who may read it.

/healthz answers 200 when the store answers a query, every platform is connected and
every broadcaster worker runs, else 503; the JSON body says which check failed and the
outbox backlog per platform (reported, never a failure: a big broadcast is not an outage).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot import metrics
from bot.config import ConfigError

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger(__name__)

STORE_TIMEOUT = 2.0  # seconds: a store that takes longer is reported as not answering
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_listen(listen: str) -> tuple[str, int]:
    """`127.0.0.1:8080`, `[::1]:8080`, `0.0.0.0:8080` → (host, port); ConfigError if not."""
    host, sep, port_text = listen.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(
            "http.listen",
            f"expected host:port like 127.0.0.1:8080 (STATEMENT_BOT_HTTP_LISTEN), got {listen!r}",
        )
    return host, int(port_text)


class HttpEndpoint:
    """Serves /healthz and /metrics about one running Service."""

    def __init__(self, service: Service, listen: str) -> None:
        self.service = service
        self.host, self.port = parse_listen(listen)
        self._runner: web.AppRunner | None = None
        self._was_healthy = True

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(
                "http.listen", f"cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        if self.port == 0:  # a free port was asked for (tests): tell which one
            self.port = int(self._runner.addresses[0][1])
        log.info("health and metrics on http://%s:%d/healthz and /metrics", self.host, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ checks

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, report): the checks /healthz runs, as data."""
        service = self.service
        problems: list[str] = []
        store: dict[str, Any] = {"ok": False}
        backlog: dict[str, int] = {}
        if service.store is None:
            problems.append("store: not open")
        else:
            try:
                async with asyncio.timeout(STORE_TIMEOUT):
                    await service.store.db.ping()
                    backlog = await service.store.outbox.backlog()
                store["ok"] = True
            except Exception as exc:  # any failure here is what the check is for
                store["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                problems.append(f"store: {store['error']}")
        platforms: dict[str, Any] = {}
        for name, platform in service.platforms.items():
            connected = bool(platform.connected)
            platforms[name] = {"connected": connected}
            if not connected:
                problems.append(f"{name}: not connected")
        broadcaster = service.broadcaster
        workers: dict[str, Any] = {}
        alive = broadcaster is not None and broadcaster.alive
        if broadcaster is not None:
            now = time.monotonic()
            for name, stats in broadcaster.stats.items():
                last = broadcaster.last_loop_at.get(name)
                workers[name] = {
                    "last_loop_seconds_ago": None if last is None else round(now - last, 3),
                    "sent": stats.sent,
                    "retried": stats.retried,
                    "failed": stats.failed,
                    "dropped": stats.dropped,
                    "rate_limited": stats.rate_limited,
                }
        if not alive:
            problems.append("broadcaster: not running")
        report: dict[str, Any] = {
            "status": "ok" if not problems else "failing",
            "problems": problems,
            "store": store,
            "platforms": platforms,
            "broadcaster": {"alive": alive, "workers": workers},
            "backlog": {
                name: backlog.get(name, 0) for name in sorted({*service.platforms, *backlog})
            },
        }
        return not problems, report

    # ------------------------------------------------------------------ handlers

    async def _healthz(self, request: web.Request) -> web.Response:
        healthy, report = await self.health()
        if healthy != self._was_healthy:  # a line per change, not per probe
            if healthy:
                log.info("health check passing again")
            else:
                log.warning("health check failing: %s", "; ".join(report["problems"]))
            self._was_healthy = healthy
        return web.json_response(report, status=200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        service = self.service
        backlog: dict[str, int] = {}
        if service.store is not None:
            try:
                async with asyncio.timeout(STORE_TIMEOUT):
                    backlog = await service.store.outbox.backlog()
            except Exception as exc:  # scrape the rest; the backlog gauge keeps its last value
                log.warning("metrics: outbox backlog not read: %s", exc)
        metrics.set_state(
            backlog,
            {name: bool(p.connected) for name, p in service.platforms.items()},
            service.broadcaster is not None and service.broadcaster.alive,
        )
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )
