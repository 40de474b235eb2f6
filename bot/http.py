"""The operator's HTTP endpoint: `/healthz` and `/metrics` (aiohttp, same event loop),
and the archive's Atom feeds: `/feed.atom`, `/tag/<tag>.atom`, `/region/<region>.atom`.

Why in-process and on 127.0.0.1 by default: the health of a bot is the state of its own
objects (is the broadcaster task alive, is Matrix syncing), which no outside probe can
see; and neither answer is for the public internet. Put it on another address only
behind something that restricts who may read it. The Atom feeds are public by nature:
a reverse proxy may forward exactly those paths (`http.base_url` is then their address).

/healthz answers 200 when the store answers a query, every platform is connected and
every broadcaster worker runs, else 503; the JSON body says which check failed and the
outbox backlog per platform (reported, never a failure: a big broadcast is not an outage).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot import atom, metrics, texts
from bot.config import ConfigError
from bot.model import Statement

if TYPE_CHECKING:
    from bot.service import Service
    from bot.store import Store

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
        app.router.add_get("/feed.atom", self._feed_all)
        app.router.add_get("/tag/{name}.atom", self._feed_tag)
        app.router.add_get("/region/{name}.atom", self._feed_region)
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

    # ------------------------------------------------------------------ Atom feeds

    def _site(self, request: web.Request) -> atom.AtomSite:
        http = self.service.config.http
        return atom.AtomSite(
            base_url=(http.base_url or str(request.url.origin())).rstrip("/"),
            title=http.feed_title,
            author=http.feed_author,
            statement_link=http.statement_link,
        )

    async def _feed_all(self, request: web.Request) -> web.Response:
        store = self._store()
        items = await store.statements.latest(atom.LATEST)
        return await self._atom(request, items, atom.feed_path("all"), None)

    async def _feed_tag(self, request: web.Request) -> web.Response:
        store = self._store()
        found = await store.statements.tag(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text=texts.ATOM_UNKNOWN_TAG)
        items = await store.statements.by_tag(found.key, atom.LATEST)
        title = texts.ATOM_TAG_TITLE.format(tag=found.name)
        return await self._atom(request, items, atom.feed_path("tag", found.name), title)

    async def _feed_region(self, request: web.Request) -> web.Response:
        store = self._store()
        found = await store.statements.region(request.match_info["name"].replace("_", " "))
        if found is None:
            raise web.HTTPNotFound(text=texts.ATOM_UNKNOWN_REGION)
        items = await store.statements.by_region(found.key, atom.LATEST)
        title = texts.ATOM_REGION_TITLE.format(region=found.name)
        return await self._atom(request, items, atom.feed_path("region", found.name), title)

    def _store(self) -> Store:
        if self.service.store is None:
            raise web.HTTPServiceUnavailable(text=texts.ATOM_NOT_READY)
        return self.service.store

    async def _atom(
        self, request: web.Request, items: list[Statement], path: str, subtitle: str | None
    ) -> web.Response:
        """The document, with an ETag so feed readers polling often mostly get a 304."""
        assert self.service.store is not None
        site = self._site(request)
        ids = [s.id for s in items if s.id is not None]
        times = await self.service.store.feeds.statement_times(ids)
        title = site.title if subtitle is None else f"{site.title}: {subtitle}"
        body = atom.build_feed(site, items, path=path, title=title, times=times)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
        match = request.headers.get("If-None-Match", "")
        if etag in [m.strip() for m in match.split(",")]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers={**headers, "Content-Type": atom.CONTENT_TYPE})
