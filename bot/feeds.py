"""The feed poller: fetch each feed when it is due, publish its new entries.

Why it is careful about the network: a feed is someone else's server. Each fetch is a
conditional GET (ETag / Last-Modified, so an unchanged feed costs a 304), bounded in time,
size and redirects; a failing feed backs off exponentially instead of being hammered, and
its error is shown to admins in /feeds. Why it is careful about subscribers: an entry is
new once (guid, else link, else its text, across restarts), the back catalogue of a feed
that was just added is never sent, and a burst of "new" entries is held for an admin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp

from bot import texts
from bot.config import FeedsConfig
from bot.feedparse import FeedEntry, FeedFormatError, ParsedFeed, entry_statement, parse_feed
from bot.model import Statement
from bot.statements import StatementError, display_region
from bot.store import ImportOutcome, Store
from bot.store.feeds import EntryRecord, Feed, SeenEntry

log = logging.getLogger(__name__)

USER_AGENT = "statement-bot/0.1 (feed reader; +https://github.com/)"
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
JITTER = 0.1  # ±10% on every interval, so feeds added together drift apart
RESCAN = 5.0  # seconds between looks at the list: a feed added in a chat is fetched soon
CONCURRENCY = 4
CHUNK = 64 * 1024
_TAG = re.compile(r"\w*[^\W\d_]\w*")


class FeedFetchError(Exception):
    """A fetch that failed; the message is what /feeds shows."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def clean_tag(text: str) -> str:
    """A feed's default tag as a hashtag without `#`, or ValueError for the admin."""
    tag = text.strip().lstrip("#")
    if not _TAG.fullmatch(tag):
        raise ValueError(texts.FEED_BAD_TAG.format(tag=text.strip()))
    return tag


def clean_region(text: str) -> str:
    """A feed's default region as headlines give it: `_` for spaces (an option is one
    word), capitals shown as in headlines (`SOUTH_AFRICA` → `South Africa`)."""
    return display_region(text.replace("_", " ").strip())


def validate_url(text: str) -> str:
    """The URL as it will be stored, or ValueError with the reason for the admin."""
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(texts.FEED_BAD_URL.format(url=url))
    if any(c.isspace() for c in url):
        raise ValueError(texts.FEED_BAD_URL.format(url=url))
    return url


# --------------------------------------------------------------------------- fetching


@dataclass(frozen=True, slots=True)
class Fetched:
    """A 200 (body set) or a 304 (body None)."""

    body: bytes | None
    etag: str | None
    last_modified: str | None
    content_type: str | None
    url: str


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    config: FeedsConfig,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """One conditional GET, streamed and stopped past `max_bytes`."""
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(config.timeout):
            async with session.get(
                url,
                headers=headers,
                allow_redirects=config.max_redirects > 0,
                max_redirects=max(config.max_redirects, 1),
            ) as resp:
                if resp.status == 304:
                    return Fetched(
                        None,
                        resp.headers.get("ETag") or etag,
                        resp.headers.get("Last-Modified") or last_modified,
                        None,
                        str(resp.url),
                    )
                if 300 <= resp.status < 400:
                    raise FeedFetchError(texts.FEED_TOO_MANY_REDIRECTS.format(limit=0))
                if resp.status != 200:
                    raise FeedFetchError(
                        texts.FEED_HTTP_STATUS.format(status=resp.status, reason=resp.reason or ""),
                        _retry_after(resp.headers.get("Retry-After"))
                        if resp.status in (429, 503)
                        else None,
                    )
                too_large = texts.FEED_TOO_LARGE.format(limit=config.max_bytes)
                if resp.content_length is not None and resp.content_length > config.max_bytes:
                    raise FeedFetchError(too_large)
                body = bytearray()
                async for chunk in resp.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) > config.max_bytes:
                        raise FeedFetchError(too_large)
                return Fetched(
                    bytes(body),
                    resp.headers.get("ETag"),
                    resp.headers.get("Last-Modified"),
                    resp.headers.get("Content-Type"),
                    str(resp.url),
                )
    except TimeoutError:
        raise FeedFetchError(texts.FEED_TIMEOUT.format(seconds=config.timeout)) from None
    except aiohttp.TooManyRedirects:
        raise FeedFetchError(
            texts.FEED_TOO_MANY_REDIRECTS.format(limit=config.max_redirects)
        ) from None
    except aiohttp.ClientConnectorError as exc:
        raise FeedFetchError(texts.FEED_CONNECT_FAILED.format(reason=exc.os_error)) from None
    except aiohttp.ClientError as exc:
        raise FeedFetchError(
            texts.FEED_CONNECT_FAILED.format(reason=str(exc) or type(exc).__name__)
        ) from None


def new_session(config: FeedsConfig) -> aiohttp.ClientSession:
    # The poller's own timeout wraps each fetch; the session's is a backstop.
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout + 5))


async def probe(url: str, config: FeedsConfig) -> ParsedFeed:
    """Fetch and parse once, for /addfeed: a web page or a dead link is refused at once."""
    async with new_session(config) as session:
        fetched = await fetch(session, url, config)
    assert fetched.body is not None
    return await asyncio.to_thread(
        parse_feed, fetched.body, url=fetched.url, content_type=fetched.content_type
    )


# --------------------------------------------------------------------------- one poll


@dataclass(slots=True)
class PollReport:
    """What one poll of one feed did."""

    feed_id: int
    status: str = "ok"  # ok | not_modified | error
    error: str | None = None
    added: int = 0  # new statements in the archive (silently or sent)
    sent: int = 0  # of those, queued for subscribers
    held: int = 0
    updated: int = 0
    noted: int = 0  # recorded as seen only
    skipped: int = 0  # entries that are no statement
    deliveries: int = 0
    next_fetch_at: float = 0.0
    statement_ids: list[int] = field(default_factory=list)


def next_delay(interval: float, errors: int, config: FeedsConfig, rng: random.Random) -> float:
    """The interval, doubled per failure in a row up to backoff_max, with jitter."""
    base = interval
    if errors > 0:
        base = max(interval, min(config.backoff_max, interval * 2 ** (errors - 1)))
    return base * rng.uniform(1 - JITTER, 1 + JITTER)


@dataclass(slots=True)
class _Plan:
    """One entry of this fetch and what to do with it."""

    entry: FeedEntry
    row: SeenEntry | None = None  # the identity it matched
    action: str = "new"  # new | edited | same | duplicate | noted_edit
    duplicate_of: _Plan | None = None  # a new entry earlier in the same document
    import_key: str = ""
    statement_id: int | None = None
    held: bool = False


class FeedPoller:
    """Polls every due feed; one instance per process, or per test."""

    def __init__(
        self,
        store: Store,
        config: FeedsConfig,
        *,
        on_published: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        rescan: float = RESCAN,
    ) -> None:
        self.store = store
        self.config = config
        self.on_published = on_published
        self.clock = clock
        self.rng = rng or random.Random()
        self.rescan = rescan
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        self._session = new_session(self.config)
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="feeds")
        log.info("feed poller started")

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.close()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.poll_due()
                next_at = await self.store.feeds.next_due_at()
            except Exception:
                log.exception("feed poller pass failed; trying again in %.0f s", self.rescan)
                next_at = None
            wait = self.rescan if next_at is None else next_at - self.clock()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.05, min(self.rescan, wait)))

    async def poll_due(self) -> list[PollReport]:
        """Poll every feed that is due now, a few at a time."""
        feeds = await self.store.feeds.due(self.clock())
        if not feeds:
            return []
        limit = asyncio.Semaphore(CONCURRENCY)

        async def one(feed: Feed) -> PollReport:
            async with limit:
                return await self.poll_feed(feed)

        return list(await asyncio.gather(*(one(f) for f in feeds)))

    async def poll_feed(self, feed: Feed) -> PollReport:
        """Fetch one feed and record the outcome; never raises for the feed's own faults."""
        if self._session is None:
            self._session = new_session(self.config)
        report = PollReport(feed.id)
        interval = feed.interval or self.config.poll_interval
        try:
            fetched = await fetch(
                self._session,
                feed.url,
                self.config,
                etag=feed.etag,
                last_modified=feed.last_modified,
            )
            parsed = None
            if fetched.body is not None:
                parsed = await asyncio.to_thread(
                    parse_feed, fetched.body, url=fetched.url, content_type=fetched.content_type
                )
        except (FeedFetchError, FeedFormatError) as exc:
            retry_after = exc.retry_after if isinstance(exc, FeedFetchError) else None
            return await self._failed(feed, report, str(exc), interval, retry_after)

        now = self.clock()
        report.next_fetch_at = now + next_delay(interval, 0, self.config, self.rng)
        if parsed is None:
            report.status = "not_modified"
            await self.store.feeds.record_fetch(
                feed.id,
                next_fetch_at=report.next_fetch_at,
                etag=fetched.etag,
                last_modified=fetched.last_modified,
                now=now,
            )
            log.debug("feed %d (%s): not modified", feed.id, feed.url)
            return report

        try:
            records = await self._ingest(feed, parsed, report, now)
        except Exception as exc:  # a bug or a database problem: shown, retried later
            log.exception("feed %d (%s): entries not stored", feed.id, feed.url)
            return await self._failed(feed, report, f"{type(exc).__name__}: {exc}", interval, None)
        await self.store.feeds.record_fetch(
            feed.id,
            next_fetch_at=report.next_fetch_at,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            title=parsed.title or None,
            entries=records,
            primed=True,
            now=now,
        )
        if report.added or report.updated or report.noted:
            log.info(
                "feed %d (%s): %d new (%d sent to %d chats, %d held), %d updated, %d noted, "
                "%d skipped",
                feed.id,
                feed.url,
                report.added,
                report.sent,
                report.deliveries,
                report.held,
                report.updated,
                report.noted,
                report.skipped,
            )
        if report.deliveries:
            self.on_published()
        return report

    async def _failed(
        self,
        feed: Feed,
        report: PollReport,
        error: str,
        interval: float,
        retry_after: float | None,
    ) -> PollReport:
        now = self.clock()
        delay = next_delay(interval, feed.errors + 1, self.config, self.rng)
        if retry_after is not None:
            delay = min(max(delay, retry_after), max(self.config.backoff_max, interval))
        report.status, report.error, report.next_fetch_at = "error", error, now + delay
        errors = await self.store.feeds.record_error(
            feed.id, error, next_fetch_at=report.next_fetch_at, now=now
        )
        log.warning(
            "feed %d (%s): %s (%d failures in a row; next try in %.0f s)",
            feed.id,
            feed.url,
            error,
            errors,
            delay,
        )
        return report

    # ----------------------------------------------------------------------- entries

    async def _ingest(
        self, feed: Feed, parsed: ParsedFeed, report: PollReport, now: float
    ) -> list[EntryRecord]:
        """Decide what each entry is, write the statements, return the rows to record."""
        first_seen = datetime.fromtimestamp(now, UTC)
        entries: list[FeedEntry] = []
        rejected: list[tuple[str | None, str | None, str]] = []
        for raw in parsed.entries:
            try:
                entries.append(
                    entry_statement(
                        raw,
                        tag=feed.tag,
                        region=feed.region,
                        language=parsed.language,
                        first_seen=first_seen,
                    )
                )
            except StatementError as exc:
                guid = str(raw.get("id") or "").strip() or None
                link = str(raw.get("link") or "").strip() or None
                rejected.append((guid, link, exc.reason))

        rows = await self.store.feeds.lookup(
            feed.id,
            [g for e in entries for g in (e.guid,) if g] + [g for g, _, _ in rejected if g],
            [li for e in entries for li in (e.link,) if li] + [li for _, li, _ in rejected if li],
            [e.text_hash for e in entries],
        )
        by_guid: dict[str, SeenEntry] = {}
        by_link: dict[str, SeenEntry] = {}
        by_text: dict[str, SeenEntry] = {}
        for row in rows:
            if row.guid:
                by_guid.setdefault(row.guid, row)
            if row.link:
                by_link.setdefault(row.link, row)
            if row.text_hash:
                by_text.setdefault(row.text_hash, row)

        records: list[EntryRecord] = []
        said: set[str] = set()
        for guid, link, reason in rejected:
            report.skipped += 1
            known = (guid and guid in by_guid) or (link and not guid and link in by_link)
            if known or (guid or link or "") in said:
                continue  # said once, when it was first seen
            said.add(guid or link or "")
            log.warning(
                "feed %d (%s): entry %s skipped: %s", feed.id, feed.url, guid or link, reason
            )
            if guid or link:
                records.append(EntryRecord(guid, link, "", "", "", None, rejected=reason))

        plans = self._plan(feed, entries, by_guid, by_link, by_text)
        new = [p for p in plans if p.action == "new"]
        # The back catalogue of a feed just added is never sent; a burst is held.
        if feed.primed:
            hold_all = feed.hold or len(new) > self.config.flood_limit
            if len(new) > self.config.flood_limit and not feed.hold:
                log.warning(
                    "feed %d (%s): %d new entries at once (flood_limit %d): all held",
                    feed.id,
                    feed.url,
                    len(new),
                    self.config.flood_limit,
                )
            for plan in new:
                plan.held = hold_all
        elif not feed.import_history:
            for plan in new:
                plan.action = "noted"

        # Text already in the archive under another key (the feed was deleted and added
        # again, or the statement came from a file): the same statement, not a new one.
        for plan in new:
            if plan.action == "new":
                existing = await self.store.statements.find_by_hash(
                    plan.entry.statement.content_hash
                )
                if existing is not None:
                    plan.action, plan.statement_id, plan.held = "duplicate", existing, False
                    plan.import_key = ""  # see _known: edits leave that statement alone

        await self._write(feed, plans, report)
        for plan in plans:
            record = self._record(plan)
            if record is not None:
                records.append(record)
        return records

    def _plan(
        self,
        feed: Feed,
        entries: Sequence[FeedEntry],
        by_guid: dict[str, SeenEntry],
        by_link: dict[str, SeenEntry],
        by_text: dict[str, SeenEntry],
    ) -> list[_Plan]:
        plans: list[_Plan] = []
        fresh_ids: dict[str, _Plan] = {}  # identities of new entries earlier in this document
        fresh_texts: dict[str, _Plan] = {}
        matched: set[int] = set()
        for entry in entries:
            row: SeenEntry | None = None
            if entry.guid:
                row = by_guid.get(entry.guid)
            if row is None and entry.link:
                # A link identifies an entry only where a guid does not: some feeds link
                # every entry to their home page.
                candidate = by_link.get(entry.link)
                if candidate is not None and (not entry.guid or not candidate.guid):
                    row = candidate
            if row is not None:
                if row.id not in matched:  # (an entry twice in one document: the first counts)
                    matched.add(row.id)
                    plans.append(self._known(feed, entry, row))
                continue
            keys = [k for k in (entry.guid, entry.link if not entry.guid else None) if k]
            earlier = next((fresh_ids[k] for k in keys if k in fresh_ids), None)
            if earlier is not None:
                continue  # the same entry twice in one document: the first counts
            text_row = by_text.get(entry.text_hash)
            if text_row is not None:
                plans.append(
                    _Plan(
                        entry,
                        text_row,
                        "duplicate",
                        import_key=text_row.import_key,
                        statement_id=text_row.statement_id,
                    )
                )
                continue
            if entry.text_hash in fresh_texts:
                plans.append(_Plan(entry, None, "duplicate", fresh_texts[entry.text_hash]))
                continue
            plan = _Plan(entry, import_key=f"feed:{feed.id}:{entry.identity}")
            plans.append(plan)
            for k in keys:
                fresh_ids[k] = plan
            fresh_texts[entry.text_hash] = plan
        return plans

    @staticmethod
    def _known(feed: Feed, entry: FeedEntry, row: SeenEntry) -> _Plan:
        if not entry.dated:  # keep the time it was first seen
            when = datetime.fromtimestamp(row.first_seen_at, UTC)
            entry = replace(entry, statement=replace(entry.statement, published_at=when))
        plan = _Plan(entry, row, import_key=row.import_key, statement_id=row.statement_id)
        plan.held = row.held
        if row.statement_id is None and not row.content_hash:
            # Rejected before (no text then): a new entry now, in the same row.
            plan.action = "new"
            plan.import_key = f"feed:{feed.id}:{entry.identity}"
        elif row.content_hash == entry.statement.content_hash:
            plan.action = "same"
        elif row.statement_id is None or not row.import_key:
            # Only noted, or the statement came from elsewhere (a file, /publish): the
            # archive's copy is not this feed's to change.
            plan.action = "noted_edit"
        else:
            plan.action = "edited"
        return plan

    async def _write(self, feed: Feed, plans: list[_Plan], report: PollReport) -> None:
        """The statements: edits, silent additions, and the ones that are sent."""
        statements = self.store.statements
        edited = [p for p in plans if p.action == "edited"]
        if edited:
            results = await statements.add_many([(p.entry.statement, p.import_key) for p in edited])
            report.updated += sum(r.outcome is ImportOutcome.UPDATED for r in results)

        def oldest_first(group: list[_Plan]) -> list[_Plan]:
            epoch = datetime.min.replace(tzinfo=UTC)
            return sorted(group, key=lambda p: p.entry.statement.published_at or epoch)

        new = [p for p in plans if p.action == "new"]
        quiet = oldest_first([p for p in new if p.held or not feed.primed])
        loud = oldest_first([p for p in new if not p.held and feed.primed])
        for group, deliver in ((quiet, False), (loud, True)):
            if not group:
                continue
            items: list[tuple[Statement, str | None]] = [
                (p.entry.statement, p.import_key) for p in group
            ]
            results = await statements.add_many(
                items, deliver=deliver, published_by=f"feed:{feed.id}" if deliver else None
            )
            for plan, result in zip(group, results, strict=True):
                plan.statement_id = result.statement.id
                report.added += 1
                report.statement_ids.append(result.statement.id or 0)
                if plan.held:
                    report.held += 1
                elif deliver:
                    report.sent += 1
                    report.deliveries += result.deliveries
        for plan in plans:
            if plan.action == "duplicate" and plan.duplicate_of is not None:
                plan.statement_id = plan.duplicate_of.statement_id
                plan.import_key = plan.duplicate_of.import_key
            if plan.action == "noted":
                report.noted += 1

    @staticmethod
    def _record(plan: _Plan) -> EntryRecord | None:
        entry = plan.entry
        if plan.action == "same":
            return None
        row_id = plan.row.id if plan.row is not None and plan.action != "duplicate" else None
        statement_id = None if plan.action == "noted" else plan.statement_id
        return EntryRecord(
            guid=entry.guid,
            link=entry.link,
            text_hash=entry.text_hash,
            content_hash=entry.statement.content_hash,
            import_key=plan.import_key,
            statement_id=statement_id,
            held=plan.held and plan.action == "new",
            row_id=row_id,
        )
