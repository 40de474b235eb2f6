"""The terminal chat: type `/latest` at a prompt, or pipe commands into stdin.

The same pipeline as any chat network: a line becomes a Command, the handlers answer,
the Reply is rendered as text. The console user is an admin of the local database, so
publish and announce can be tried; `y` / `n` answer a pending confirmation.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from pathlib import Path
from typing import TextIO

from bot import texts
from bot.model import Chat, ChatKind, Command, Outcome, Reply, Sent, User
from bot.platforms.base import answer, parse_command_text
from bot.render import to_text
from handlers.context import Services

log = logging.getLogger(__name__)

CONSOLE_USER = "local"
CONSOLE_ADMIN = f"console:{CONSOLE_USER}"
HISTORY_FILE = Path("~/.statement_bot_history")


class ConsolePlatform:
    name = "console"
    prefix = "/"

    def __init__(
        self,
        services: Services,
        *,
        user_id: str = CONSOLE_USER,
        out: TextIO | None = None,
        stdin: TextIO | None = None,
    ) -> None:
        self.services = services
        self.user = User(self.name, user_id, user_id)
        self.chat = Chat(self.name, user_id, ChatKind.PRIVATE, "terminal")
        self.out = out or sys.stdout
        self.stdin = stdin or sys.stdin
        self._ids = itertools.count(1)
        self._running = False
        self.finished = asyncio.Event()

    # ----------------------------------------------------------------- Platform protocol

    @property
    def connected(self) -> bool:
        return self._running

    async def start(self) -> None:
        self._running = True

    async def stop(self) -> None:
        self._running = False

    async def send(self, chat: Chat, reply: Reply) -> Outcome:
        self.out.write(to_text(reply, prefix=self.prefix) + "\n\n")
        self.out.flush()
        return Sent(str(next(self._ids)))

    async def send_direct(self, user_id: str, reply: Reply) -> Outcome:
        return await self.send(self.chat, reply)

    def global_rate(self) -> float:
        return 0.0

    def chat_interval(self, chat: Chat) -> float:
        return 0.0

    async def sender_is_chat_admin(self, chat: Chat, sender: User) -> bool:
        return True

    async def resolve_chat(self, ref: str, sender: User) -> Chat | str | None:
        return None

    # ----------------------------------------------------------------- input

    def command_for(self, line: str) -> Command | None:
        """A typed line → Command; `y`/`n` confirm or cancel; other text → help hint."""
        stripped = line.strip()
        if not stripped:
            return None
        if stripped.lower() in {"y", "yes"}:
            return Command("confirm", "", self.chat, self.user)
        if stripped.lower() in {"n", "no"}:
            return Command("cancel", "", self.chat, self.user)
        parsed = parse_command_text(stripped, (self.prefix,))
        if parsed is None:
            return Command("help", "", self.chat, self.user)
        name, args, _ = parsed
        return Command(name, args, self.chat, self.user)

    async def push(self, line: str) -> list[Reply]:
        """Handle one line as if typed; returns the replies (also printed)."""
        cmd = self.command_for(line)
        if cmd is None:
            return []
        replies, _ = await answer(self.services, self, cmd)
        return replies

    async def run_stdin(self) -> None:
        """Read lines until EOF (Ctrl-D). A bare `/publish` reads the statement on the
        following lines, up to a line with a single `.`."""
        interactive = self.stdin.isatty()
        if interactive:
            self._enable_history()
            self.out.write(texts.CONSOLE_BANNER + "\n\n")
        elif self.out is sys.stdout:
            # Scripted use: keep stdout for the answers, still say what is running.
            sys.stderr.write(texts.CONSOLE_BANNER + "\n")
        try:
            while self._running:
                line = await self._read_line(interactive, texts.CONSOLE_PROMPT)
                if line is None:
                    break
                if line.strip() in {"/publish", "/announce"}:
                    body = await self._read_block(interactive)
                    line = f"{line.strip()}\n{body}"
                await self.push(line)
        finally:
            if interactive:
                self._save_history()
            self.finished.set()

    async def _read_block(self, interactive: bool) -> str:
        lines: list[str] = []
        if interactive:
            self.out.write("(end with a line containing only a dot)\n")
        while True:
            line = await self._read_line(interactive, "... ")
            if line is None or line.strip() == ".":
                return "\n".join(lines)
            lines.append(line)

    async def _read_line(self, interactive: bool, prompt: str) -> str | None:
        loop = asyncio.get_running_loop()
        if interactive:
            try:
                return await loop.run_in_executor(None, input, prompt)
            except EOFError:
                self.out.write("\n")
                return None
        line = await loop.run_in_executor(None, self.stdin.readline)
        return line.rstrip("\n") if line else None

    def _enable_history(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import readline

            readline.read_history_file(HISTORY_FILE.expanduser())

    def _save_history(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import readline

            readline.set_history_length(1000)
            readline.write_history_file(HISTORY_FILE.expanduser())
