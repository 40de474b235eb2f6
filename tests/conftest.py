"""Shared fixtures: a fresh store, the handlers' services, and the console adapter.

The real-server fixtures live beside this file: `synapse_server` / `synapse_strict`
(tests/synapse.py) and `telegram_api` (tests/telegram_api.py).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from synapse import synapse_server, synapse_strict  # noqa: F401
from telegram_api import telegram_api  # noqa: F401

from bot.model import Reply
from bot.platforms.console import CONSOLE_ADMIN, ConsolePlatform
from bot.render import to_text
from bot.statements import parse_file
from bot.store import Store
from handlers.context import PendingActions, Services, Throttle

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "statements"
SAMPLE = SAMPLES / "iran-down-with-us-drones.txt"


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "bot.db")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def services(store: Store) -> Services:
    return Services(
        store=store,
        admins=frozenset({CONSOLE_ADMIN}),
        page_size=5,
        throttle=Throttle(20),
        pending=PendingActions(600.0),
    )


class ConsoleChat:
    """errbot-style: push a line, get the bot's answer as text."""

    def __init__(self, platform: ConsolePlatform) -> None:
        self.platform = platform

    async def ask(self, line: str) -> str:
        replies = await self.platform.push(line)
        return "\n\n".join(to_text(r) for r in replies)

    async def replies(self, line: str) -> list[Reply]:
        return await self.platform.push(line)


@pytest.fixture
def console(services: Services) -> ConsoleChat:
    """The console as the local admin."""
    return ConsoleChat(ConsolePlatform(services, out=io.StringIO()))


@pytest.fixture
def visitor(services: Services) -> ConsoleChat:
    """The console as a user who is not an admin."""
    return ConsoleChat(ConsolePlatform(services, user_id="visitor", out=io.StringIO()))


@pytest_asyncio.fixture
async def sample_loaded(store: Store) -> Store:
    await store.statements.add(parse_file(SAMPLE), import_key="file:" + SAMPLE.name)
    return store
