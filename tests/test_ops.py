"""Operations: health and metrics over real HTTP, the database lock, backup and restore,
logs without secrets, and the deploy/ files.

Why real processes where it matters: an operator meets `statement-bot serve` through its
logs, its exit code and its HTTP port, and `restore` meets a running bot in another
process; in-process shortcuts would skip exactly the wiring these tests are about.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml
from conftest import ROOT, SAMPLE
from polling import eventually
from prometheus_client.parser import text_string_to_metric_families
from synapse import Synapse, free_port
from telegram_api import FakeTelegram

from bot import cli
from bot.config import SECRETS, Config, HttpConfig, TelegramConfig, load_config
from bot.logs import JsonFormatter, RedactSecrets
from bot.service import Service
from bot.statements import parse_statement
from bot.store import Store, latest_version
from bot.store.lock import DatabaseInUse

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"),
]

DEPLOY = ROOT / "deploy"
USER = 1001
OTHER = 1002
ADMIN = 4242
# Distinctive so that a match in the logs can only be a leak.
TOKEN = "918273:AAE-opsS3cretT0ken_q7Zx"
MATRIX_PASSWORD = "matrix-Pa55word-9c1d7f"


def statement_text(n: int) -> str:
    return f"SYRIA - Operations test statement {n}\n\nSolidarity, paragraph {n}.\n\n#Syria #Ops"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any STATEMENT_BOT_* setting of the developer's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMENT_BOT_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def run_cli_async(*args: str, cwd: Path) -> tuple[int, str, str]:
    """The CLI in a subprocess without blocking the loop the running service needs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(session: aiohttp.ClientSession, base: str) -> Samples:
    async with session.get(base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# ---------------------------------------------------------------------- a running service


@dataclass
class Running:
    service: Service
    fake: FakeTelegram
    database: Path
    base: str  # http://127.0.0.1:port of the health/metrics endpoint
    http: aiohttp.ClientSession

    @property
    def store(self) -> Store:
        assert self.service.store is not None
        return self.service.store

    async def ask(self, chat_id: int, text: str) -> dict[str, Any]:
        before = len(self.fake.messages_to(chat_id))
        self.fake.inject_message(chat_id, chat_id, text)
        return (await self.fake.wait_for_messages(chat_id, before + 1))[before]

    async def publish(self, n: int) -> None:
        await self.store.statements.add(
            parse_statement(
                statement_text(n), default_published_at=datetime(2024, 2, n, tzinfo=UTC)
            ),
            deliver=True,
        )
        assert self.service.broadcaster is not None
        self.service.broadcaster.wake()


def service_config(fake: FakeTelegram, database: Path) -> Config:
    return Config(
        database=str(database),
        admins=[f"telegram:{ADMIN}"],
        telegram=TelegramConfig(token=fake.token, api_url=fake.base_url, poll_timeout=1),
        http=HttpConfig(listen="127.0.0.1:0"),
    )


@pytest_asyncio.fixture
async def running(telegram_api: FakeTelegram, tmp_path: Path) -> AsyncIterator[Running]:
    """A Service with Telegram (against FakeTelegram) and the HTTP endpoint, no console."""
    database = tmp_path / "bot.db"
    service = Service(service_config(telegram_api, database), console=False)
    try:
        await service.start()
        assert service.http is not None
        async with aiohttp.ClientSession() as session:
            yield Running(
                service, telegram_api, database, f"http://127.0.0.1:{service.http.port}", session
            )
    finally:
        await service.shutdown()


async def test_healthz_reports_every_check(running: Running) -> None:
    async with running.http.get(running.base + "/healthz") as resp:
        assert resp.status == 200
        report = await resp.json()
    assert report["status"] == "ok"
    assert report["problems"] == []
    assert report["store"]["ok"] is True
    assert report["platforms"] == {"telegram": {"connected": True}}
    assert report["broadcaster"]["alive"] is True
    assert report["backlog"] == {"telegram": 0}

    await running.ask(USER, "/subscribe")
    await running.store.statements.add(parse_statement(statement_text(1)), deliver=True)
    # Not yet sent (the broadcaster was not woken and Telegram will ask it to wait): counted.
    running.fake.fail_next(
        "sendMessage",
        chat_id=USER,
        error_code=429,
        description="Too Many Requests: retry after 1",
        parameters={"retry_after": 1},
    )
    async with running.http.get(running.base + "/healthz") as resp:
        assert (await resp.json())["backlog"] == {"telegram": 1}

    assert running.service.broadcaster is not None
    await running.service.broadcaster.stop(grace=1.0)
    async with running.http.get(running.base + "/healthz") as resp:
        assert resp.status == 503
        report = await resp.json()
    assert report["status"] == "failing"
    assert report["broadcaster"]["alive"] is False
    assert "broadcaster: not running" in report["problems"]


async def test_metrics_count_commands_and_deliveries(running: Running) -> None:
    before = await scrape(running.http, running.base)
    assert metric(before, "statement_bot_platform_connected", platform="telegram") == 1
    assert metric(before, "statement_bot_broadcaster_alive") == 1

    await running.ask(USER, "/subscribe")
    await running.ask(USER, "/nosuchcommand")
    after_commands = await scrape(running.http, running.base)
    for command in ("subscribe", "unknown"):
        assert metric(after_commands, "statement_bot_commands_total", command=command) == (
            metric(before, "statement_bot_commands_total", command=command) + 1
        )

    sent_before = len(running.fake.messages_to(USER))
    await running.publish(1)
    await running.fake.wait_for_messages(USER, sent_before + 1)
    # A 429 for the next one: counted as a rate limit, then sent after the wait.
    running.fake.fail_next(
        "sendMessage",
        chat_id=USER,
        error_code=429,
        description="Too Many Requests: retry after 1",
        parameters={"retry_after": 1},
    )
    await running.publish(2)
    await running.fake.wait_for_messages(USER, sent_before + 2, timeout=10)

    async def delivered() -> Samples | None:
        samples = await scrape(running.http, running.base)
        sent = metric(
            samples, "statement_bot_deliveries_total", platform="telegram", outcome="sent"
        )
        backlog = metric(samples, "statement_bot_outbox_backlog", platform="telegram")
        return samples if sent >= 2 and backlog == 0 else None  # marked sent in the outbox too

    after = await eventually(delivered)

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("statement_bot_deliveries_total", platform="telegram", outcome="sent") == 2
    assert delta("statement_bot_deliveries_total", platform="telegram", outcome="rate_limited") == 1
    assert delta("statement_bot_rate_limited_total", platform="telegram") == 1
    assert delta("statement_bot_send_seconds_count", platform="telegram") == 3
    assert delta("statement_bot_send_seconds_sum", platform="telegram") > 0


async def test_second_service_on_the_same_database_is_refused(running: Running) -> None:
    other = Service(service_config(running.fake, running.database), console=False)
    with pytest.raises(DatabaseInUse, match="another statement-bot"):
        await other.start()
    await other.shutdown()
    # The refused start did not take the running service's lock away from it.
    assert running.service.lock is not None and running.service.lock.held


async def test_backup_while_running_is_consistent(running: Running, tmp_path: Path) -> None:
    await running.ask(USER, "/subscribe")
    stop = asyncio.Event()
    written = 0

    async def writer() -> None:
        """Statements and their deliveries keep being written during the backup."""
        nonlocal written
        while not stop.is_set():
            written += 1
            text = f"SYRIA - Backup test {written}\n\nWritten during a backup.\n\n#Syria"
            await running.store.statements.add(parse_statement(text), deliver=True)
            await asyncio.sleep(0)

    task = asyncio.create_task(writer())
    await eventually(lambda: written >= 5)
    dest = tmp_path / "backups"
    dest.mkdir()
    code, out, err = await run_cli_async(
        "--db", str(running.database), "backup", str(dest), cwd=tmp_path
    )
    stop.set()
    await task
    assert code == 0, err
    (backup,) = dest.glob("statement-bot-*.db")
    assert f"backup written to {backup}" in out
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA user_version").fetchone()[0] == latest_version()
        copied = conn.execute("SELECT count(*) FROM statements").fetchone()[0]
        # Every copied statement came with its deliveries: one transaction, copied whole.
        orphans = conn.execute(
            "SELECT count(*) FROM statements s WHERE NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.statement_id = s.id)"
        ).fetchone()[0]
    finally:
        conn.close()
    assert 5 <= copied <= written
    assert orphans == 0


async def test_restore_is_refused_while_the_bot_runs(running: Running, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    await running.store.backup(backup)
    code, _, err = await run_cli_async(
        "--db", str(running.database), "restore", str(backup), "--yes", cwd=tmp_path
    )
    assert code == 2
    assert "another statement-bot" in err and str(os.getpid()) in err
    assert "stop it first" in err
    # The bot still works on its database.
    assert "subscribed" in (await running.ask(USER, "/subscribe"))["plain"].lower()


# ---------------------------------------------------------------------- restore (bot stopped)


@pytest.fixture
def quiet_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """cli.main in-process, without it replacing pytest's log handlers."""
    monkeypatch.setattr(cli, "setup_logging", lambda *args, **kwargs: None)
    for name in list(os.environ):
        if name.startswith("STATEMENT_BOT_"):
            monkeypatch.delenv(name)


async def _database_with(path: Path, *texts: str) -> None:
    store = await Store.open(path)
    try:
        for text in texts:
            await store.statements.add(parse_statement(text))
    finally:
        await store.close()


async def _titles(path: Path) -> list[str]:
    store = await Store.open(path)
    try:
        return sorted(s.title for s in await store.statements.latest(50))
    finally:
        await store.close()


@pytest.mark.usefixtures("quiet_cli")
async def test_restore_replaces_the_database(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source, target = tmp_path / "source.db", tmp_path / "live.db"
    await _database_with(source, statement_text(1), statement_text(2))
    await _database_with(target, statement_text(3))
    backup = tmp_path / "backup.db"
    store = await Store.open(source)
    await store.backup(backup)
    await store.close()

    assert cli.main(["--db", str(target), "restore", str(backup), "--yes"]) == 0
    assert f"restored {backup} (schema version {latest_version()}) into {target}" in (
        capsys.readouterr().out
    )
    assert await _titles(target) == [
        "Operations test statement 1",
        "Operations test statement 2",
    ]
    # The backup is left as it was, with no -wal/-shm beside it.
    assert sorted(p.name for p in tmp_path.glob("backup.db*")) == ["backup.db"]  # noqa: ASYNC240


@pytest.mark.usefixtures("quiet_cli")
async def test_restore_checks_the_source(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "live.db"
    await _database_with(target, statement_text(3))
    not_ours = tmp_path / "other.db"
    sqlite3.connect(not_ours).execute("CREATE TABLE notes (text)").connection.close()
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database at all\n" * 100)
    newer = tmp_path / "newer.db"
    await _database_with(newer, statement_text(4))
    sqlite3.connect(newer).execute(
        f"PRAGMA user_version = {latest_version() + 1}"
    ).connection.close()

    expected = {
        not_ours: "not a statement-bot database",
        text_file: "not an SQLite database",
        newer: "newer than this statement-bot",
        tmp_path / "missing.db": "no such file",
    }
    for source, message in expected.items():
        assert cli.main(["--db", str(target), "restore", str(source), "--yes"]) == 2
        assert message in capsys.readouterr().err
    # Without --yes and no terminal to ask on, nothing is replaced.
    backup = tmp_path / "backup.db"
    await _database_with(backup, statement_text(5))
    assert cli.main(["--db", str(target), "restore", str(backup)]) == 2
    assert "--yes" in capsys.readouterr().err
    assert await _titles(target) == ["Operations test statement 3"]


# ---------------------------------------------------------------------- logs and secrets


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of the log must be one JSON object (stderr is not a terminal)."""
    records = []
    for line in text.splitlines():
        if line.strip():
            records.append(json.loads(line))
    return records


def _assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
    # The secret half of the bot token alone is just as bad.
    assert TOKEN.split(":", 1)[1] not in text
    # A Synapse access token (the one the bot's login got) has this shape.
    assert not re.search(r"syt_[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+", text)


async def test_serve_logs_json_without_secrets(synapse_server: Synapse, tmp_path: Path) -> None:
    """`statement-bot serve` at DEBUG with a Telegram token and a Matrix password: the logs
    are JSON lines, say which delivery failed to which chat and why, and hold no secret."""
    account = synapse_server.register(f"opsbot{os.getpid()}", password=MATRIX_PASSWORD)
    port = free_port()
    database = tmp_path / "bot.db"
    log_path = tmp_path / "serve.log"
    async with FakeTelegram(token=TOKEN) as fake:
        env = clean_env(
            STATEMENT_BOT_DATABASE=str(database),
            STATEMENT_BOT_TELEGRAM_TOKEN=TOKEN,
            STATEMENT_BOT_TELEGRAM_API_URL=fake.base_url,
            STATEMENT_BOT_TELEGRAM_POLL_TIMEOUT="1",
            STATEMENT_BOT_MATRIX_HOMESERVER=synapse_server.url,
            STATEMENT_BOT_MATRIX_USER_ID=account.user_id,
            STATEMENT_BOT_MATRIX_PASSWORD=MATRIX_PASSWORD,
            STATEMENT_BOT_HTTP_LISTEN=f"127.0.0.1:{port}",
            STATEMENT_BOT_ADMINS=f"telegram:{ADMIN}",
        )
        with log_path.open("w") as log_file:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "--log-level",
                "DEBUG",
                "serve",
                cwd=tmp_path,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        try:
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{port}"

                async def healthy() -> dict[str, Any] | None:
                    if process.returncode is not None:
                        raise AssertionError(f"serve exited:\n{log_path.read_text()[-3000:]}")
                    try:
                        async with http.get(base + "/healthz") as resp:
                            return await resp.json() if resp.status == 200 else None
                    except aiohttp.ClientError:
                        return None

                report = await eventually(healthy, timeout=30)
                assert report["platforms"] == {
                    "telegram": {"connected": True},
                    "matrix": {"connected": True},
                }

                for chat in (USER, OTHER):
                    fake.inject_message(chat, chat, "/subscribe")
                    await fake.wait_for_messages(chat, 1)
                fake.fail_next(
                    "sendMessage",
                    chat_id=USER,
                    error_code=400,
                    description="Bad Request: message is too long",
                )
                fake.fail_chat(OTHER, 403, "Forbidden: bot was blocked by the user")
                published = await asyncio.to_thread(
                    run_cli, "publish", str(SAMPLE), "--yes", cwd=tmp_path, env=env
                )
                assert published.returncode == 0, published.stderr

                async def failed() -> bool:
                    samples = await scrape(http, base)
                    return (
                        metric(
                            samples,
                            "statement_bot_deliveries_total",
                            platform="telegram",
                            outcome="permanent",
                        )
                        == 1
                        and metric(
                            samples,
                            "statement_bot_deliveries_total",
                            platform="telegram",
                            outcome="gone",
                        )
                        == 1
                    )

                await eventually(failed)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 20)
    assert code == 0
    text = log_path.read_text()
    _assert_no_secret(text, TOKEN, MATRIX_PASSWORD)
    records = _json_lines(text)
    assert any(r["level"] == "debug" for r in records)  # DEBUG really was on
    messages = [r["msg"] for r in records if r["level"] in ("warning", "error")]
    assert any(f"telegram:{USER} failed: Message is too long" in m for m in messages)
    assert any(
        f"telegram:{OTHER} is gone (Forbidden: bot was blocked by the user)" in m for m in messages
    )


async def test_rejected_token_is_not_printed(tmp_path: Path) -> None:
    """PTB's InvalidToken quotes the token; the crash is logged through the filter."""
    wrong = "555444:AAF-wrongS3cret_tok3n"
    async with FakeTelegram(token=TOKEN) as fake:
        env = clean_env(
            STATEMENT_BOT_DATABASE=str(tmp_path / "bot.db"),
            STATEMENT_BOT_TELEGRAM_TOKEN=wrong,
            STATEMENT_BOT_TELEGRAM_API_URL=fake.base_url,
        )
        result = await asyncio.to_thread(run_cli, "serve", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert wrong not in result.stderr + result.stdout
    assert wrong.split(":", 1)[1] not in result.stderr
    (crash,) = [r for r in _json_lines(result.stderr) if r["level"] == "critical"]
    assert "InvalidToken" in crash["msg"] and "***" in crash["msg"]


def test_redaction_covers_arguments_tracebacks_and_extra_fields() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets([TOKEN, MATRIX_PASSWORD, "short"]))
    logger = logging.getLogger("test_ops.redaction")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.debug("GET https://api.telegram.org/bot%s/getMe", TOKEN)
        logger.info("login", extra={"body": f'{{"password": "{MATRIX_PASSWORD}"}}'})
        try:
            raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
        except RuntimeError:
            logger.exception("start failed")
        logger.warning("stack", stack_info=True, extra={"url": f"/bot{TOKEN}/x"})
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    _assert_no_secret(text, TOKEN, MATRIX_PASSWORD)
    records = _json_lines(text)
    assert len(records) == 4
    assert records[0]["msg"] == "GET https://api.telegram.org/bot***/getMe"
    assert "***" in records[1]["body"] and "***" in records[2]["error"]


# ---------------------------------------------------------------------- deploy/


def _config_fields(obj: object, prefix: str = "") -> dict[str, object]:
    """Every setting of bot.config as a dotted name → its default."""
    out: dict[str, object] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        if f.name == "source":
            continue
        value = getattr(obj, f.name)
        if is_dataclass(value):
            out |= _config_fields(value, f"{prefix}{f.name}.")
        else:
            out[prefix + f.name] = value
    return out


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[prefix + key] = value
    return out


def test_example_config_loads_and_documents_every_setting() -> None:
    path = DEPLOY / "statement-bot.example.toml"
    config = load_config(path, env={})  # no secret, no secret file needed
    assert config.http.listen == "127.0.0.1:8080"
    assert not config.telegram.enabled and not config.matrix.enabled

    # With every "# key = value" line uncommented, the file names every setting, with a
    # value of the setting's type, and never a secret itself (only its *_file twin).
    text = path.read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^# ?([a-z_]+ = .*)$", r"\1", text)
    documented = _flatten(tomllib.loads(uncommented))
    settings = _config_fields(Config())
    assert set(documented) == set(settings) - SECRETS
    for name, value in documented.items():
        default = settings[name]
        if isinstance(default, float):
            assert isinstance(value, int | float), name
        else:
            assert isinstance(value, type(default)), name
    # Each setting has its own explanation right above it (or above its group).
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^#? ?[a-z_]+ = ", line):
            above = lines[max(0, index - 3) : index]
            assert any(a.startswith("#") for a in above), line


def test_dockerfile_follows_the_rules() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [
        line.split(None, 1)
        for line in re.sub(r"\\\n", " ", text).splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    names = [i[0] for i in instructions]
    args = {i[0]: i[1] for i in instructions}
    assert args["FROM"] == "python:3.11-slim"
    assert names.count("USER") == 1 and args["USER"].split(":")[0] not in {"0", "root"}
    assert names.index("USER") > max(i for i, n in enumerate(names) if n == "RUN")
    assert "/data" in args["VOLUME"]
    assert "STATEMENT_BOT_DATABASE=/data/statement-bot.db" in args["ENV"]
    assert "STATEMENT_BOT_HTTP_LISTEN=127.0.0.1:8080" in args["ENV"]
    assert "http://127.0.0.1:8080/healthz" in args["HEALTHCHECK"]
    assert json.loads(args["ENTRYPOINT"]) == ["statement-bot"]
    assert json.loads(args["CMD"]) == ["serve"]
    assert "--no-cache-dir" in args["RUN"] or any(
        "--no-cache-dir" in i[1] for i in instructions if i[0] == "RUN"
    )
    # Everything the image copies is let through the build context's ignore file.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for name, rest in instructions:
        if name == "COPY":
            for source in rest.split()[:-1]:
                name = source.rstrip("/")
                assert f"!{name}" in ignore or f"!{name}/" in ignore, source
                assert (ROOT / source).exists(), source
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint:
        result = subprocess.run(
            [hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bot = compose["services"]["bot"]
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / bot["build"]["context"] / bot["build"]["dockerfile"]).is_file()
    assert any(v.endswith(":/data") for v in bot["volumes"])
    assert bot["volumes"][0].split(":")[0] in compose["volumes"]
    assert bot["env_file"] == ["statement-bot.env"]
    assert (DEPLOY / "statement-bot.env.example").is_file()
    assert bot["restart"] == "unless-stopped"
    assert "profiles" not in bot
    synapse = compose["services"]["synapse"]
    assert synapse["profiles"] == ["matrix"]
    assert synapse["image"].startswith("matrixdotorg/synapse:")
    assert all(p.startswith("127.0.0.1:") for p in synapse["ports"])
    # The env example names only settings that exist.
    settings = {
        "STATEMENT_BOT_" + name.replace(".", "_").upper() for name in _config_fields(Config())
    }
    example = (DEPLOY / "statement-bot.env.example").read_text()
    for name in re.findall(r"(?m)^#? ?(STATEMENT_BOT_[A-Z_]+)=", example):
        assert name in settings, name


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key.strip(), value.strip()))
    return sections


def test_systemd_unit_is_hardened_and_valid(tmp_path: Path) -> None:
    path = DEPLOY / "statement-bot.service"
    unit = _unit(path)
    service = dict(unit["Service"])
    expected = {
        "DynamicUser": "yes",
        "StateDirectory": "statement-bot",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "EnvironmentFile": "/etc/statement-bot/env",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "15",
        "Environment": "STATEMENT_BOT_DATABASE=/var/lib/statement-bot/statement-bot.db",
    }
    for key, value in expected.items():
        assert service.get(key) == value, key
    assert set(service["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert ("SystemCallFilter", "@system-service") in unit["Service"]
    assert service["ExecStart"].endswith(" serve")
    assert dict(unit["Install"])["WantedBy"] == "multi-user.target"

    analyze = shutil.which("systemd-analyze")
    installed = Path(sys.executable).parent / "statement-bot"
    if analyze is None or not installed.exists():
        return
    # verify checks that ExecStart exists: point it at this checkout's statement-bot.
    local = tmp_path / "statement-bot.service"
    local.write_text(
        path.read_text().replace("/opt/statement-bot/bin/statement-bot", str(installed))
    )
    result = subprocess.run(
        [analyze, "verify", str(local)], capture_output=True, text=True, check=False, timeout=30
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "statement-bot.service:" not in output, output  # unknown keys, bad values


def test_nginx_example_matches_the_webhook_defaults() -> None:
    text = (DEPLOY / "nginx-webhook.conf").read_text()
    defaults = TelegramConfig()
    assert f"proxy_pass http://{defaults.webhook_listen}:{defaults.webhook_port};" in text
    (path,) = re.findall(r"location = (\S+) \{", text)
    assert f'webhook_url = "https://bot.example.org{path}"' in text
    # The secret header is PTB's business: nginx must not drop or set it.
    assert "proxy_set_header X-Telegram-Bot-Api-Secret-Token" not in text
    assert text.count("{") == text.count("}")
