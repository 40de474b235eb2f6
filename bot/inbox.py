"""The inbox folder: statement files dropped into a folder are published.

Why it waits for a file to be still: a file being copied in (scp, a network share, an
editor saving) is readable half-written, and a half statement must not reach thousands
of chats. A file is taken once its size and modification time are the same on two looks
in a row. Why it cannot publish twice: the import key is the file's name and content, so
the store answers UNCHANGED for a file it already has, and the file is moved away only
after the database committed; a crash between the two leaves a file that the next pass
just moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.statements import STATEMENT_SUFFIXES, StatementError, parse_file
from bot.store import ImportOutcome, Store

log = logging.getLogger(__name__)

PUBLISHED = "published"
REJECTED = "rejected"
ERROR_SUFFIX = ".error"


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """What happened to one file: `published`, `unchanged` (published by an earlier pass
    that could not move it), `duplicate` (the same text is in the archive already) or
    `rejected` (with the reason as `file:line: reason`)."""

    name: str
    outcome: str
    statement_id: int | None = None
    deliveries: int = 0
    error: str | None = None
    moved_to: Path | None = None


def import_key(name: str, content_hash: str) -> str:
    """`inbox:<name>:<hash>`: the same file twice is one statement, but a name used again
    for another text (a script that always writes `statement.txt`) is a new statement,
    never an edit of the one already sent."""
    return f"inbox:{name}:{content_hash[:16]}"


def _candidates(folder: Path) -> dict[str, tuple[int, int]]:
    """name → (size, mtime_ns) of the statement files directly in `folder`."""
    found: dict[str, tuple[int, int]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or Path(name).suffix.lower() not in STATEMENT_SUFFIXES:
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # moved away meanwhile
            found[name] = (st.st_size, st.st_mtime_ns)
    return found


def _free_name(folder: Path, name: str) -> Path:
    """`name`, else `stem-2.txt`, `stem-3.txt`…: published files are never overwritten."""
    target = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    return target


class InboxWatcher:
    """Looks at one folder every `interval` seconds and publishes what stays still."""

    def __init__(
        self,
        store: Store,
        folder: str | Path,
        *,
        interval: float = 1.0,
        published_by: str = "inbox",
        on_published: Callable[[], None] = lambda: None,
        on_event: Callable[[InboxEvent], None] = lambda _event: None,
    ) -> None:
        self.store = store
        self.folder = Path(folder)
        self.interval = interval
        self.published_by = published_by
        self.on_published = on_published
        self.on_event = on_event
        self._last: dict[str, tuple[int, int]] = {}
        self._stuck: dict[str, tuple[int, int]] = {}  # files whose move failed, not re-logged
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def prepare(self) -> None:
        """Create the folder and its two sub-folders (blocking; call before the loop)."""
        for sub in (self.folder, self.folder / PUBLISHED, self.folder / REJECTED):
            sub.mkdir(parents=True, exist_ok=True)

    async def start(self) -> None:
        await asyncio.to_thread(self.prepare)
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name="inbox")
        log.info("watching %s for statement files", self.folder)

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 5.0)

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Until stopped: look, publish what is still, wait."""
        while not self._stop.is_set():
            try:
                await self.scan()
            except Exception:
                log.exception("inbox %s: pass failed", self.folder)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    async def scan(self) -> list[InboxEvent]:
        """One look: files unchanged since the previous look are processed."""
        try:
            now = await asyncio.to_thread(_candidates, self.folder)
        except OSError as exc:
            log.error("inbox %s cannot be read: %s", self.folder, exc)
            return []
        ready = sorted(n for n, sig in now.items() if self._last.get(n) == sig)
        self._last = now
        events = []
        for name in ready:
            if self._stuck.get(name) == now[name]:
                continue
            if self._stop.is_set():
                break
            event = await self._process(name, now[name])
            if event is not None:
                events.append(event)
                self.on_event(event)
        return events

    async def _process(self, name: str, signature: tuple[int, int]) -> InboxEvent | None:
        path = self.folder / name
        try:
            statement = await asyncio.to_thread(parse_file, path)
        except StatementError as exc:
            reason = str(StatementError(name, exc.line, exc.reason))
            return await self._reject(name, signature, reason)
        # Already in the archive under another name (the same file published with
        # `statement-bot publish`, or copied in twice): not published again.
        existing = await self.store.statements.find_by_hash(statement.content_hash)
        key = import_key(name, statement.content_hash)
        if existing is not None and await self.store.feeds.import_key_of(existing) != key:
            log.info("inbox: %s is already published as #%d; not sent again", name, existing)
            event = InboxEvent(name, "duplicate", existing)
            return await self._move(name, signature, event, PUBLISHED)
        result = await self.store.statements.add(
            statement, import_key=key, deliver=True, published_by=self.published_by
        )
        sid = result.statement.id
        if result.outcome is ImportOutcome.ADDED:
            await self.store.audit.record(self.published_by, "publish", f"statement {sid}")
            log.info("inbox: %s published as #%s to %d chats", name, sid, result.deliveries)
            if result.deliveries:
                self.on_published()
            event = InboxEvent(name, "published", sid, result.deliveries)
        else:  # published before a crash or a failed move: only the move was missing
            event = InboxEvent(name, "unchanged", sid)
        return await self._move(name, signature, event, PUBLISHED)

    async def _reject(self, name: str, signature: tuple[int, int], reason: str) -> InboxEvent:
        """To rejected/, with `<name>.error` beside it; the latest rejection of a name wins."""

        def write_and_move() -> Path | None:
            source = self.folder / name
            st = source.stat()
            if (st.st_size, st.st_mtime_ns) != signature:
                return None  # still being written after all
            target = self.folder / REJECTED / name
            target.with_name(name + ERROR_SUFFIX).write_text(reason + "\n", encoding="utf-8")
            os.replace(source, target)
            return target

        event = InboxEvent(name, "rejected", error=reason)
        try:
            target = await asyncio.to_thread(write_and_move)
        except FileNotFoundError:
            return event
        except OSError as exc:
            if self._stuck.get(name) != signature:
                log.error("inbox: cannot move %s to %s/: %s", name, REJECTED, exc)
            self._stuck[name] = signature
            return event
        if target is None:
            self._last.pop(name, None)
            return event
        log.warning("inbox: rejected %s", reason)
        return InboxEvent(name, "rejected", error=reason, moved_to=target)

    async def _move(
        self, name: str, signature: tuple[int, int], event: InboxEvent, where: str
    ) -> InboxEvent:
        def move() -> Path | None:
            source = self.folder / name
            st = source.stat()
            if (st.st_size, st.st_mtime_ns) != signature:
                return None  # written again while we read it: taken again once still
            target = _free_name(self.folder / where, name)
            os.replace(source, target)
            return target

        try:
            target = await asyncio.to_thread(move)
        except FileNotFoundError:
            return event  # someone else moved it
        except OSError as exc:
            if self._stuck.get(name) != signature:
                log.error("inbox: %s is published but cannot be moved: %s", name, exc)
            self._stuck[name] = signature
            return event
        self._stuck.pop(name, None)
        if target is None:
            self._last.pop(name, None)
            return event
        return InboxEvent(
            event.name, event.outcome, event.statement_id, event.deliveries, event.error, target
        )
