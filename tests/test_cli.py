"""The installed `statement-bot` command, run as an operator would: a subprocess with a
clean environment, in an empty folder, checked by exit code, output and database."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from conftest import SAMPLE

from bot.cli import build_parser
from bot.store import latest_version

BIN = Path(sys.executable).parent / "statement-bot"
SAMPLE_TITLE = "Down with US drones, down with US imperialism!"
JSON_FIELDS = {"id", "slug", "title", "regions", "tags", "published_at", "source", "body"}
TOKEN = "123456:SECRET-token-value"

MARKDOWN = """---
title: Solidarity with the dockers
regions: [Chile]
tags: [strike, dockers]
published: 2024-05-01T10:00:00Z
source: https://example.org/dockers
---
The dockers of Valparaíso are on strike.

We stand with them. #solidarity
"""


class Cli:
    """Runs the installed command in `folder` with only the environment given."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "bot.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STATEMENT_BOT_")}
        self.env["STATEMENT_BOT_DATABASE"] = str(self.db)

    def __call__(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=self.folder,
            env={**self.env, **(env or {})},
            timeout=60,
            check=False,
        )

    def json(self, *args: str) -> list[dict[str, object]]:
        return self.json_many([*args])[0]

    def json_many(self, *runs: list[str]) -> list[list[dict[str, object]]]:
        """Several read-only `--json` runs at once (each start costs ~0.5 s of CPU)."""
        with ThreadPoolExecutor(len(runs)) as pool:
            done = list(pool.map(lambda args: self(*args, "--json"), runs))
        for run in done:
            assert run.returncode == 0, run.stderr
        return [json.loads(run.stdout) for run in done]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    assert BIN.exists(), f"{BIN} is not installed: pip install -e ."
    return Cli(tmp_path)


@pytest.fixture
def statements_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    (folder / "dockers.md").write_text(MARKDOWN, encoding="utf-8")
    return folder


def subcommands() -> list[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("no subcommands")


def test_help_on_every_subcommand(cli: Cli) -> None:
    names = subcommands()
    assert {"run", "serve", "console", "import", "publish", "announce"} <= set(names)
    assert {"statements", "subscribers", "stats", "backup"} <= set(names)
    # One process each, all at once: the suite stays fast.
    runs = {
        name: subprocess.Popen(
            [str(BIN), *([name] if name else []), "--help"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cli.folder,
            env=cli.env,
        )
        for name in ["", *names]
    }
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (name, err)
        assert out.startswith(f"usage: statement-bot {name}".rstrip()), (name, out)
        assert err == ""
    top = subprocess.run(
        [sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, check=False
    )
    assert top.returncode == 0 and "--config FILE" in top.stdout and "--db PATH" in top.stdout


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli().returncode == 2
    done = cli("import")
    assert done.returncode == 2 and "the following arguments are required: PATH" in done.stderr
    assert cli("frobnicate").returncode == 2


def test_import_reports_and_is_idempotent(cli: Cli, statements_dir: Path) -> None:
    broken = statements_dir / "broken.txt"
    broken.write_text("#only #hashtags\n", encoding="utf-8")
    done = cli("import", str(statements_dir))
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"rejected  {broken}:1: headline missing: the first line holds only hashtags\n"
    )
    lines = done.stdout.splitlines()
    assert lines == [
        f"added     {statements_dir / 'dockers.md'}  #1 Solidarity with the dockers",
        f"added     {statements_dir / SAMPLE.name}  #2 {SAMPLE_TITLE}",
        "2 added, 0 updated, 0 unchanged, 1 rejected",
    ]

    broken.unlink()
    again = cli("import", str(statements_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "0 added, 0 updated, 2 unchanged, 0 rejected"
    assert again.stdout.startswith(f"unchanged {statements_dir / 'dockers.md'}  #1 ")
    assert len(cli.json("statements")) == 2

    # A changed file updates its statement, under the same id.
    (statements_dir / "dockers.md").write_text(
        MARKDOWN.replace("are on strike", "won their strike"), encoding="utf-8"
    )
    changed = cli("import", "-q", str(statements_dir))
    assert changed.returncode == 0
    assert changed.stdout == "0 added, 1 updated, 1 unchanged, 0 rejected\n"
    (dockers,) = cli.json("statements", "--tag", "dockers")
    assert dockers["id"] == 1
    assert (
        dockers["body"]
        == "The dockers of Valparaíso won their strike.\n\nWe stand with them. #solidarity"
    )
    assert len(cli.json("statements")) == 2


def test_import_missing_path_still_imports_the_others(cli: Cli, statements_dir: Path) -> None:
    done = cli("import", "-q", str(statements_dir / SAMPLE.name), "nowhere.txt")
    assert done.returncode == 1
    assert done.stderr == "rejected  nowhere.txt: no such file or folder\n"
    assert done.stdout == "1 added, 0 updated, 0 unchanged, 1 rejected\n"


def test_statements_json(cli: Cli, statements_dir: Path) -> None:
    assert cli("import", "-q", str(statements_dir)).returncode == 0
    data = cli.json("statements")
    assert [s["title"] for s in data] == [SAMPLE_TITLE, "Solidarity with the dockers"]
    for item in data:
        assert set(item) >= JSON_FIELDS
    sample, dockers = data
    assert sample["slug"] == "down-with-us-drones-down-with-us-imperialism"
    assert sample["regions"] == ["Iran"]
    assert sample["tags"] == ["Iran", "USdrones", "imperialistwar"]
    assert sample["source"] is None
    assert isinstance(sample["body"], str)
    assert len(sample["body"].split("\n\n")) == 10
    assert sample["body"].startswith("The friction the US is creating")
    datetime.fromisoformat(str(sample["published_at"]))
    assert dockers == {
        "id": 1,
        "slug": "solidarity-with-the-dockers",
        "title": "Solidarity with the dockers",
        "regions": ["Chile"],
        "tags": ["strike", "dockers", "solidarity"],
        "published_at": "2024-05-01T10:00:00+00:00",
        "source": "https://example.org/dockers",
        "language": None,
        "body": "The dockers of Valparaíso are on strike.\n\nWe stand with them. #solidarity",
    }
    # Filters, matched the way chat users match them.
    found = cli.json_many(
        ["statements", "--tag", "USDRONES"],
        ["statements", "--region", "IRN"],
        ["statements", "--region", "cl"],
        ["statements", "--tag", "nope"],
        ["statements", "--region", "France"],
        ["statements", "--search", "dock*"],
    )
    assert [[s["id"] for s in run] for run in found] == [[2], [2], [1], [], [], [1]]
    # The table for people.
    table = cli("statements")
    assert table.returncode == 0
    assert table.stdout.splitlines()[1].startswith("#1      2024-05-01  Chile ")


def test_publish_announce_subscribers_stats(cli: Cli, statements_dir: Path) -> None:
    assert cli("import", "-q", str(statements_dir / SAMPLE.name)).returncode == 0
    # The terminal chat (piped) subscribes itself, so there is someone to deliver to.
    chat = cli("console", stdin="/subscribe\n")
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == "Subscribed: this chat will receive every new statement."

    subs = cli("subscribers")
    assert subs.stdout.splitlines()[-1] == "1 chats subscribed"
    assert subs.stdout.startswith("console:local")
    assert cli.json("subscribers") == [
        {
            "platform": "console",
            "chat_id": "local",
            "kind": "private",
            "title": "terminal",
            "active": True,
            "filters": ["all"],
        }
    ]

    new = statements_dir / "new.txt"
    new.write_text("CHILE - Dockers win\n\nThe strike is over.\n\n#strike\n", encoding="utf-8")
    refused = cli("publish", str(new))
    assert refused.returncode == 2
    assert "not a terminal: add --yes" in refused.stderr
    done = cli("publish", str(new), "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Dockers win\n\nChile · ")
    assert "--- 1 chats will receive this statement." in done.stdout
    assert done.stdout.endswith("Published as #2; 1 deliveries queued.\n")
    again = cli("publish", str(new), "--yes")
    assert again.stdout.endswith("#2 was already published (unchanged); nothing sent again.\n")

    bad = statements_dir / "bad.txt"
    bad.write_text("", encoding="utf-8")
    rejected = cli("publish", str(bad), "--yes")
    assert (rejected.returncode, rejected.stderr) == (1, f"rejected  {bad}:1: empty file\n")

    told = cli("announce", "Meeting", "tonight", "--yes")
    assert told.returncode == 0, told.stderr
    assert told.stdout.startswith("Announcement\n\nMeeting tonight\n\n--- 1 chats will receive")
    assert told.stdout.endswith("Announcement #1 queued for 1 chats.\n")
    tagged = cli("announce", "Hi", "--tag", "strike", "--yes")
    assert tagged.stdout.endswith("Announcement #2 queued for 1 chats.\n")
    unknown = cli("announce", "Hi", "--tag", "nope", "--yes")
    assert unknown.returncode == 2
    assert unknown.stderr == "statement-bot announce: no statement is tagged #nope\n"

    stats = cli("stats", "--json")
    assert json.loads(stats.stdout) == {
        "statements": 2,
        "tags": 4,
        "regions": 2,
        "chats": 1,
        "subscriptions": 1,
        "subscribed": 1,
        "outbox_backlog": {"console": 3},
        "schema_version": latest_version(),
    }
    text = cli("stats")
    assert text.returncode == 0
    assert "statements       2\n" in text.stdout

    with sqlite3.connect(cli.db) as conn:
        rows = conn.execute(
            "SELECT statement_id, announcement_id, state FROM deliveries ORDER BY id"
        ).fetchall()
        audit = conn.execute("SELECT actor, action, detail FROM audit_log ORDER BY id").fetchall()
    assert rows == [(2, None, "pending"), (None, 1, "pending"), (None, 2, "pending")]
    assert audit == [
        ("cli", "publish", "statement 2"),
        ("cli", "publish", "statement 2"),
        ("cli", "announce", "announcement 1"),
        ("cli", "announce", "announcement 2"),
    ]


def test_backup(cli: Cli, statements_dir: Path, tmp_path: Path) -> None:
    assert cli("import", "-q", str(statements_dir)).returncode == 0
    dest = tmp_path / "backups" / "copy.db"
    done = cli("backup", str(dest))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"backup written to {dest}\n"
    with sqlite3.connect(dest) as conn:
        titles = sorted(r[0] for r in conn.execute("SELECT title FROM statements"))
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        hits = conn.execute(
            "SELECT count(*) FROM statements_fts WHERE statements_fts MATCH 'dockers'"
        ).fetchone()[0]
    assert titles == [SAMPLE_TITLE, "Solidarity with the dockers"]
    assert (version, hits) == (latest_version(), 1)
    # The copy is a database the bot can run on.
    other = cli("statements", "--json", env={"STATEMENT_BOT_DATABASE": str(dest)})
    assert len(json.loads(other.stdout)) == 2

    exists = cli("backup", str(dest))
    assert exists.returncode == 2
    assert exists.stderr == f"statement-bot backup: {dest} exists; add --force to overwrite\n"
    assert cli("backup", str(dest), "--force").returncode == 0
    folder = cli("backup", str(tmp_path / "backups"))
    assert folder.returncode == 0
    assert len(list((tmp_path / "backups").glob("statement-bot-*.db"))) == 1


def test_console_in_a_pipe(cli: Cli) -> None:
    assert cli("import", "-q", str(SAMPLE)).returncode == 0
    done = cli("console", stdin="/latest\n/nope\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Latest statements\n\n#1 {SAMPLE_TITLE}\n\nIran · ")
    assert "[Read #1: /show 1]\n\n" in done.stdout
    assert done.stdout.endswith("I don't know the command /nope. Send /help for the list.\n\n")
    # `--db` names the database too.
    other = cli("--db", str(cli.folder / "other.db"), "console", stdin="/latest\n")
    assert other.stdout.strip() == "There are no statements yet."


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"STATEMENT_BOT_ADMINS": "bob"}, ["stats"], "admins: 'bob' is not 'telegram:<user id>'"),
        (
            {
                "STATEMENT_BOT_MATRIX_HOMESERVER": "https://matrix.example.org",
                "STATEMENT_BOT_MATRIX_USER_ID": "@bot:example.org",
            },
            ["stats"],
            "STATEMENT_BOT_MATRIX_PASSWORD: the Matrix account needs",
        ),
        (
            {"STATEMENT_BOT_COMMANDS_PAGE_SIZE": "lots"},
            ["stats"],
            "STATEMENT_BOT_COMMANDS_PAGE_SIZE: expected a whole number",
        ),
        ({}, ["--config", "missing.toml", "stats"], "--config: no such file 'missing.toml'"),
        ({}, ["serve"], "STATEMENT_BOT_TELEGRAM_TOKEN: serve needs a platform"),
    ],
)
def test_bad_settings_exit_2_naming_them(
    cli: Cli, env: dict[str, str], args: list[str], named: str
) -> None:
    done = cli(*args, env={**env, "STATEMENT_BOT_TELEGRAM_TOKEN": ""} if args == ["serve"] else env)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("statement-bot: configuration error: ")
    assert named in done.stderr
    assert not cli.db.exists()  # refused before touching anything


def test_secret_in_config_file_refused_and_not_printed(cli: Cli) -> None:
    (cli.folder / "statement-bot.toml").write_text(
        f'[telegram]\ntoken = "{TOKEN}"\n', encoding="utf-8"
    )
    done = cli("stats")
    assert done.returncode == 2
    assert "telegram.token: secrets are not read from the config file; set " in done.stderr
    assert "STATEMENT_BOT_TELEGRAM_TOKEN" in done.stderr
    assert TOKEN not in done.stderr + done.stdout


def test_newer_database_refused(cli: Cli) -> None:
    assert cli("stats").returncode == 0
    with sqlite3.connect(cli.db) as conn:
        conn.execute(f"PRAGMA user_version = {latest_version() + 1}")
    done = cli("stats")
    assert done.returncode == 2
    assert done.stderr.startswith("statement-bot: database error: database ")
    assert "newer than this statement-bot knows" in done.stderr


async def test_import_goes_in_batches_and_reports_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An archive imports IMPORT_BATCH files per transaction (flat memory); the report
    still names every file, rejections included, in order."""
    from bot import cli as cli_module
    from bot.store import Store

    folder = tmp_path / "archive"
    folder.mkdir()
    for i in range(7):
        (folder / f"s{i}.txt").write_text(f"IRAN - Statement {i}\n\nBody {i}.\n\n#Iran\n")
    (folder / "s3b.txt").write_text("#only #hashtags\n")
    monkeypatch.setattr(cli_module, "IMPORT_BATCH", 3)
    batches: list[int] = []
    store = await Store.open(tmp_path / "bot.db")
    add_many = store.statements.add_many

    async def counting(items, **kwargs):  # type: ignore[no-untyped-def]
        batches.append(len(items))
        return await add_many(items, **kwargs)

    monkeypatch.setattr(store.statements, "add_many", counting)
    try:
        args = build_parser().parse_args(["import", str(folder)])
        assert await cli_module.cmd_import(store, args) == 1
        assert batches == [3, 3, 1]
        assert await store.statements.count() == 7
    finally:
        await store.close()
    out = capsys.readouterr()
    added = [line.split()[1] for line in out.out.splitlines()[:-1]]
    assert added == [str(folder / f"s{i}.txt") for i in range(7)]
    assert out.out.splitlines()[-1] == "7 added, 0 updated, 0 unchanged, 1 rejected"
    assert "s3b.txt:1: headline missing" in out.err
