"""Settings: TOML plus STATEMENT_BOT_* overrides, secrets only from env or files, and a
wrong setting refused with its name and what to put there."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import DEFAULT_TELEGRAM_API_URL, Config, ConfigError, describe, load_config

TOKEN = "123456:ABC-def_ghi"


@pytest.fixture(autouse=True)
def _no_config_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in an empty folder: ./statement-bot.toml is read when present."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)


def toml(tmp_path: Path, text: str, name: str = "bot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(path: Path | None = None, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return info.value


def test_defaults() -> None:
    config = load_config(env={})
    assert config.database == "statement-bot.db"
    assert config.admins == []
    assert config.telegram.api_url == DEFAULT_TELEGRAM_API_URL == "https://api.telegram.org/bot"
    assert not config.telegram.enabled and not config.matrix.enabled
    assert (config.commands.rate_per_minute, config.commands.page_size) == (20, 5)
    assert config.source == ""


def test_toml_values(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        """
database = "/var/lib/bot/bot.db"
admins = ["telegram:1", "matrix:@ann:example.org"]
[telegram]
api_url = "http://127.0.0.1:8081/bot"
[telegram.rates]
group_per_minute = 10
[matrix]
homeserver = "https://matrix.example.org"
user_id = "@bot:example.org"
allowed_servers = ["example.org"]
[commands]
page_size = 7
""",
    )
    config = load_config(path, env={"STATEMENT_BOT_MATRIX_ACCESS_TOKEN": "syt_x"})
    assert config.source == str(path)
    assert config.database == "/var/lib/bot/bot.db"
    assert config.admins == ["telegram:1", "matrix:@ann:example.org"]
    assert config.telegram.api_url == "http://127.0.0.1:8081/bot"
    assert config.telegram.rates.group_per_minute == 10.0
    assert config.matrix.allowed_servers == ["example.org"]
    assert config.matrix.enabled and config.matrix.access_token == "syt_x"
    assert config.commands.page_size == 7
    assert config.is_admin("telegram", "1") and not config.is_admin("telegram", "2")


def test_environment_overrides_toml(tmp_path: Path) -> None:
    path = toml(tmp_path, 'database = "from-toml.db"\nadmins = ["telegram:1"]\n')
    env = {
        "STATEMENT_BOT_DATABASE": "from-env.db",
        "STATEMENT_BOT_ADMINS": "telegram:2, matrix:@b:example.org",
        "STATEMENT_BOT_TELEGRAM_TOKEN": TOKEN,
        "STATEMENT_BOT_TELEGRAM_API_URL": "http://localhost:9/bot",
        "STATEMENT_BOT_TELEGRAM_RATES_PAID_BROADCAST": "yes",
        "STATEMENT_BOT_COMMANDS_RATE_PER_MINUTE": "5",
        "STATEMENT_BOT_LOG_LEVEL": "",  # empty means unset
    }
    config = load_config(path, env=env)
    assert config.database == "from-env.db"
    assert config.admins == ["telegram:2", "matrix:@b:example.org"]
    assert config.telegram.token == TOKEN and config.telegram.enabled
    assert config.telegram.api_url == "http://localhost:9/bot"
    assert config.telegram.rates.paid_broadcast is True
    assert config.commands.rate_per_minute == 5
    assert config.log_level == "INFO"


def test_database_argument_wins(tmp_path: Path) -> None:
    config = load_config(env={"STATEMENT_BOT_DATABASE": "env.db"}, database="arg.db")
    assert config.database == "arg.db"


def test_default_config_file_in_working_folder() -> None:
    Path("statement-bot.toml").write_text('database = "here.db"\n', encoding="utf-8")
    config = load_config(env={})
    assert (config.database, config.source) == ("here.db", "statement-bot.toml")


@pytest.mark.parametrize(
    ("section", "key", "env_name"),
    [
        ("telegram", "token", "STATEMENT_BOT_TELEGRAM_TOKEN"),
        ("matrix", "password", "STATEMENT_BOT_MATRIX_PASSWORD"),
        ("matrix", "access_token", "STATEMENT_BOT_MATRIX_ACCESS_TOKEN"),
    ],
)
def test_secrets_refused_from_toml(tmp_path: Path, section: str, key: str, env_name: str) -> None:
    e = error(toml(tmp_path, f'[{section}]\n{key} = "s3cret"\n'))
    assert e.setting == f"{section}.{key}"
    assert env_name in str(e)
    assert f"{key}_file" in str(e)
    assert "s3cret" not in str(e)


def test_secret_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n", encoding="utf-8")
    (tmp_path / "password").write_text("  pw  \n", encoding="utf-8")
    path = toml(
        tmp_path,
        f"""
[telegram]
token_file = "{tmp_path / "token"}"
[matrix]
homeserver = "https://m.example.org"
user_id = "@bot:example.org"
password_file = "{tmp_path / "password"}"
""",
    )
    config = load_config(path, env={})
    assert config.telegram.token == TOKEN
    assert config.matrix.password == "pw"
    shown = describe(config)
    assert shown["telegram"]["token"] == "***"  # type: ignore[index]
    assert shown["matrix"]["password"] == "***"  # type: ignore[index]
    assert TOKEN not in repr(shown) and "'pw'" not in repr(shown)


def test_environment_secret_beats_file(tmp_path: Path) -> None:
    path = toml(tmp_path, f'[telegram]\ntoken_file = "{tmp_path / "missing"}"\n')
    config = load_config(path, env={"STATEMENT_BOT_TELEGRAM_TOKEN": TOKEN})
    assert config.telegram.token == TOKEN


def test_secret_file_missing_or_empty(tmp_path: Path) -> None:
    e = error(toml(tmp_path, f'[telegram]\ntoken_file = "{tmp_path / "missing"}"\n'))
    assert e.setting == "telegram.token_file"
    assert "cannot read" in str(e)
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    e = error(env={"STATEMENT_BOT_MATRIX_PASSWORD_FILE": str(tmp_path / "empty")})
    assert e.setting == "matrix.password_file"
    assert "is empty" in str(e)


@pytest.mark.parametrize(
    ("admins", "why"),
    [
        ("bob", "is not 'telegram:<user id>' or 'matrix:<@user:server>'"),
        ("irc:bob", "is not 'telegram:<user id>' or 'matrix:<@user:server>'"),
        ("telegram:", "is not 'telegram:<user id>' or 'matrix:<@user:server>'"),
        ("telegram:@ann", "a Telegram user id is a number"),
        ("matrix:ann", "a Matrix user id looks like @name:server"),
        ("matrix:@ann", "a Matrix user id looks like @name:server"),
    ],
)
def test_bad_admin_entries(admins: str, why: str) -> None:
    e = error(env={"STATEMENT_BOT_ADMINS": f"telegram:1,{admins}"})
    assert e.setting == "admins"
    assert repr(admins) in str(e) and why in str(e)


def test_matrix_without_password_names_the_variable() -> None:
    env = {
        "STATEMENT_BOT_MATRIX_HOMESERVER": "https://matrix.example.org",
        "STATEMENT_BOT_MATRIX_USER_ID": "@bot:example.org",
    }
    e = error(env=env)
    assert e.setting == "STATEMENT_BOT_MATRIX_PASSWORD"
    assert str(e).startswith("STATEMENT_BOT_MATRIX_PASSWORD: ")
    assert "STATEMENT_BOT_MATRIX_ACCESS_TOKEN" in str(e)


def test_matrix_homeserver_and_user_id_checked() -> None:
    e = error(env={"STATEMENT_BOT_MATRIX_USER_ID": "@bot:example.org"})
    assert e.setting == "STATEMENT_BOT_MATRIX_HOMESERVER"
    e = error(
        env={
            "STATEMENT_BOT_MATRIX_HOMESERVER": "https://m.example.org",
            "STATEMENT_BOT_MATRIX_USER_ID": "bot",
            "STATEMENT_BOT_MATRIX_PASSWORD": "pw",
        }
    )
    assert e.setting == "STATEMENT_BOT_MATRIX_USER_ID"


def test_bad_telegram_token() -> None:
    e = error(env={"STATEMENT_BOT_TELEGRAM_TOKEN": "not-a-token"})
    assert e.setting == "STATEMENT_BOT_TELEGRAM_TOKEN"
    assert "@BotFather" in str(e)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    e = error(toml(tmp_path, "[telegram]\ntokn_file = 'x'\n"))
    assert e.setting == "telegram.tokn_file"
    assert "unknown setting" in str(e) and "token_file" in str(e)
    e = error(toml(tmp_path, "databse = 'x.db'\n"))
    assert str(e).startswith("databse: unknown setting; known here: ")
    assert "database" in str(e)


@pytest.mark.parametrize(
    ("text", "setting", "why"),
    [
        ("[commands]\npage_size = 'many'\n", "commands.page_size", "expected a whole number"),
        ("[commands]\npage_size = 50\n", "commands.page_size", "expected 1 to 20"),
        ("[commands]\nrate_per_minute = 0\n", "commands.rate_per_minute", "at least 1"),
        ("telegram = 5\n", "telegram", "expected a table"),
        ("admins = [1, 2]\n", "admins", "expected a list of strings"),
        ("database = 5\n", "database", "expected a string"),
        ("[telegram]\nmode = 'push'\n", "telegram.mode", "'polling' or 'webhook'"),
        ("[telegram]\napi_url = 'ftp://x'\n", "telegram.api_url", "http(s) URL"),
        ("[telegram.rates]\npaid_broadcast = 'maybe'\n", "telegram.rates.paid_broadcast", "true"),
        ("log_format = 'xml'\n", "log_format", "auto, json or text"),
    ],
)
def test_wrong_values(tmp_path: Path, text: str, setting: str, why: str) -> None:
    e = error(toml(tmp_path, text))
    assert e.setting == setting
    assert why in str(e)


def test_wrong_environment_value_names_the_variable() -> None:
    e = error(env={"STATEMENT_BOT_COMMANDS_PAGE_SIZE": "five"})
    assert e.setting == "STATEMENT_BOT_COMMANDS_PAGE_SIZE"
    assert "expected a whole number, got 'five'" in str(e)


def test_webhook_mode_needs_url() -> None:
    env = {"STATEMENT_BOT_TELEGRAM_TOKEN": TOKEN, "STATEMENT_BOT_TELEGRAM_MODE": "webhook"}
    assert error(env=env).setting == "telegram.webhook_url"


def test_missing_or_broken_file(tmp_path: Path) -> None:
    e = error(tmp_path / "nope.toml")
    assert e.setting == "--config" and "nope.toml" in str(e)
    broken = toml(tmp_path, "database = \n")
    e = error(broken)
    assert e.setting == str(broken) and "not valid TOML" in str(e)


def test_config_is_a_plain_dataclass() -> None:
    assert Config().telegram.rates.global_per_second == 30.0
