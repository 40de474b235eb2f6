"""A local website with feeds, for the feed poller's tests: 127.0.0.1 only, free port.

It serves documents a test sets (`server.set("news", rss(...))` → `/f/news`) with ETag and
Last-Modified, answering 304 to a matching conditional GET as real servers do, and it has
the misbehaving pages feeds meet in the wild: `/status/<code>` (500, 429 with Retry-After…),
`/slow` (answers after `slow_seconds`), `/huge` (a body without end), `/loop/a` (a redirect
loop), `/redirect/<name>` (a 301 to `/f/<name>`), `/page` (a web page, not a feed).
Every request is recorded with its headers.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from xml.sax.saxutils import escape

from aiohttp import web

RSS_TYPE = "application/rss+xml; charset=utf-8"
ATOM_TYPE = "application/atom+xml; charset=utf-8"


@dataclass(slots=True)
class Document:
    body: bytes
    content_type: str
    etag: str
    last_modified: datetime


@dataclass(slots=True)
class Seen:
    path: str
    headers: Mapping[str, str]


@dataclass(slots=True)
class FeedServer:
    docs: dict[str, Document] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    slow_seconds: float = 5.0
    retry_after: str = "120"
    conditional: bool = True  # False: ignore If-None-Match / If-Modified-Since (sloppy servers)
    base: str = ""
    _runner: web.AppRunner | None = None

    def set(self, name: str, body: str | bytes, content_type: str = RSS_TYPE) -> None:
        """Serve `body` at /f/<name>; a changed body gets a new ETag and Last-Modified."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        old = self.docs.get(name)
        if old is not None and old.body == data:
            return
        now = datetime.now(UTC).replace(microsecond=0)
        if old is not None and now <= old.last_modified:
            now = old.last_modified + timedelta(seconds=1)  # changed twice in one second
        self.docs[name] = Document(data, content_type, f'"{hashlib.sha1(data).hexdigest()}"', now)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def feed_url(self, name: str) -> str:
        return self.url(f"/f/{name}")

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    # ------------------------------------------------------------------ handlers

    async def _record(self, request: web.Request) -> None:
        self.requests.append(Seen(request.path, dict(request.headers)))

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        doc = self.docs.get(request.match_info["name"])
        if doc is None:
            raise web.HTTPNotFound()
        headers = {"ETag": doc.etag, "Last-Modified": format_datetime(doc.last_modified, True)}
        if self.conditional:
            match = request.headers.get("If-None-Match")
            since = request.headers.get("If-Modified-Since")
            if match is not None:
                if doc.etag in [m.strip() for m in match.split(",")]:
                    return web.Response(status=304, headers=headers)
            elif since is not None:
                try:
                    if doc.last_modified <= parsedate_to_datetime(since):
                        return web.Response(status=304, headers=headers)
                except (TypeError, ValueError):
                    pass
        return web.Response(body=doc.body, headers={**headers, "Content-Type": doc.content_type})

    async def _status(self, request: web.Request) -> web.Response:
        await self._record(request)
        code = int(request.match_info["code"])
        headers = {"Retry-After": self.retry_after} if code in (429, 503) else {}
        return web.Response(status=code, text=f"status {code}", headers=headers)

    async def _slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        await asyncio.sleep(self.slow_seconds)
        return web.Response(body=rss([item(1)]).encode(), content_type="application/rss+xml")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        """Chunked, no Content-Length: the reader has to count."""
        await self._record(request)
        response = web.StreamResponse(headers={"Content-Type": RSS_TYPE})
        await response.prepare(request)
        await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
        chunk = b"<!-- " + b"x" * 65536 + b" -->"
        try:
            for _ in range(2000):  # ~130 MB if nobody stops reading
                await response.write(chunk)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    async def _declared(self, request: web.Request) -> web.Response:
        """A huge Content-Length said up front (the body never comes)."""
        await self._record(request)
        return web.Response(body=b"x" * 300_000, content_type="application/rss+xml")

    async def _loop(self, request: web.Request) -> web.Response:
        await self._record(request)
        other = "b" if request.match_info["step"] == "a" else "a"
        raise web.HTTPFound(f"/loop/{other}")

    async def _redirect(self, request: web.Request) -> web.Response:
        await self._record(request)
        raise web.HTTPMovedPermanently(f"/f/{request.match_info['name']}")

    async def _page(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(
            text="<!doctype html><html><head><title>Our site</title></head>"
            "<body><p>Welcome!</p></body></html>",
            content_type="text/html",
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/f/{name}", self._feed)
        app.router.add_get("/status/{code:\\d+}", self._status)
        app.router.add_get("/slow", self._slow)
        app.router.add_get("/huge", self._huge)
        app.router.add_get("/declared", self._declared)
        app.router.add_get("/loop/{step}", self._loop)
        app.router.add_get("/redirect/{name}", self._redirect)
        app.router.add_get("/page", self._page)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@asynccontextmanager
async def serving() -> AsyncIterator[FeedServer]:
    """A started server (the tests' `feed_server` fixture wraps this)."""
    server = FeedServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --------------------------------------------------------------------------- documents


def item(
    n: int,
    *,
    title: str | None = None,
    text: str | None = None,
    guid: str | None = "auto",
    link: str | None = "auto",
    date: str | None = "auto",
    categories: Iterable[str] = (),
    html: bool = True,
) -> dict[str, object]:
    """An entry for `rss` / `atom`: defaults give entry n a distinct guid, link, date, text."""
    return {
        "title": f"IRAN - Statement number {n}" if title is None else title,
        "text": (f"<p>First paragraph of statement {n}.</p><p>Second paragraph.</p>"
                 if text is None else text),
        "guid": f"urn:statement:{n}" if guid == "auto" else guid,
        "link": f"https://org.example/statements/{n}" if link == "auto" else link,
        "date": f"2024-03-{n:02d}T10:00:00Z" if date == "auto" else date,
        "categories": list(categories),
        "html": html,
    }  # fmt: skip


def _rfc822(iso: str) -> str:
    return format_datetime(datetime.fromisoformat(iso.replace("Z", "+00:00")), True)


def rss(
    items: Iterable[dict[str, object]], *, title: str = "Org statements", extra: str = ""
) -> str:
    """RSS 2.0 with content:encoded for the HTML text."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        f"<channel><title>{escape(title)}</title><link>https://org.example/</link>",
        "<description>Statements</description><language>en</language>",
        extra,
    ]
    for it in items:
        parts.append("<item>")
        if it["title"] is not None:
            parts.append(f"<title>{escape(str(it['title']))}</title>")
        if it["link"] is not None:
            parts.append(f"<link>{escape(str(it['link']))}</link>")
        if it["guid"] is not None:
            parts.append(f'<guid isPermaLink="false">{escape(str(it["guid"]))}</guid>')
        if it["date"] is not None:
            parts.append(f"<pubDate>{_rfc822(str(it['date']))}</pubDate>")
        for category in it["categories"]:  # type: ignore[attr-defined]
            parts.append(f"<category>{escape(category)}</category>")
        if it["text"] is not None:
            if it["html"]:
                parts.append(f"<content:encoded><![CDATA[{it['text']}]]></content:encoded>")
            else:
                parts.append(f"<description>{escape(str(it['text']))}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts)


def atom(entries: Iterable[dict[str, object]], *, title: str = "Org statements (Atom)") -> str:
    """Atom 1.0 with HTML content."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title><id>urn:org:feed</id>",
        "<updated>2024-03-30T00:00:00Z</updated><author><name>Org</name></author>",
    ]
    for it in entries:
        parts.append("<entry>")
        parts.append(f'<title type="text">{escape(str(it["title"] or ""))}</title>')
        parts.append(f"<id>{escape(str(it['guid']))}</id>")
        if it["link"] is not None:
            parts.append(f'<link rel="alternate" href="{escape(str(it["link"]))}"/>')
        if it["date"] is not None:
            parts.append(f"<published>{it['date']}</published><updated>{it['date']}</updated>")
        else:
            parts.append("<updated>2024-03-30T00:00:00Z</updated>")
        for category in it["categories"]:  # type: ignore[attr-defined]
            parts.append(f'<category term="{escape(category)}"/>')
        if it["text"] is not None:
            parts.append(f'<content type="html">{escape(str(it["text"]))}</content>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "\n".join(parts)
