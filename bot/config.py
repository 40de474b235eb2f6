"""Settings from one TOML file plus STATEMENT_BOT_* environment variables.

Every setting has a TOML key and an environment twin: `[telegram] api_url` is
`STATEMENT_BOT_TELEGRAM_API_URL`; top-level `database` is `STATEMENT_BOT_DATABASE`.
The environment wins. Secrets (tokens, passwords) come only from the environment or
from a file named by a `*_file` setting, so a config file can be shared safely.
A wrong setting fails at start with its name and what to put there.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "STATEMENT_BOT_"
DEFAULT_CONFIG_FILE = "statement-bot.toml"
DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org/bot"

# Secret settings: environment only (or their `*_file` twin), never from TOML, never printed.
SECRETS = frozenset(
    {"telegram.token", "telegram.webhook_secret", "matrix.password", "matrix.access_token"}
)


class ConfigError(Exception):
    """A setting is wrong or missing; the message names it and says what to put there."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


@dataclass(slots=True)
class TelegramRates:
    """Telegram's documented limits; the broadcaster paces itself below them."""

    global_per_second: float = 30.0
    private_per_second: float = 1.0
    group_per_minute: float = 20.0
    paid_broadcast: bool = False
    paid_per_second: float = 1000.0


@dataclass(slots=True)
class TelegramConfig:
    token: str = ""
    token_file: str = ""
    api_url: str = DEFAULT_TELEGRAM_API_URL
    mode: str = "polling"  # polling | webhook
    webhook_url: str = ""
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    webhook_secret: str = ""
    webhook_secret_file: str = ""
    poll_timeout: int = 30
    rates: TelegramRates = field(default_factory=TelegramRates)

    @property
    def enabled(self) -> bool:
        return bool(self.token)


@dataclass(slots=True)
class MatrixConfig:
    homeserver: str = ""
    user_id: str = ""
    password: str = ""
    password_file: str = ""
    access_token: str = ""
    access_token_file: str = ""
    device_name: str = "statement-bot"
    command_prefix: str = "!"
    allowed_servers: list[str] = field(default_factory=list)  # empty: the bot's own server
    store_path: str = ""  # crypto store; default next to the database
    messages_per_second: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.homeserver or self.user_id)


@dataclass(slots=True)
class CommandsConfig:
    rate_per_minute: int = 20
    page_size: int = 5


@dataclass(slots=True)
class BroadcastConfig:
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 600.0
    concurrency: int = 16
    confirm_timeout: float = 600.0


@dataclass(slots=True)
class HttpConfig:
    listen: str = ""  # "127.0.0.1:8080" turns the health/metrics endpoint on
    base_url: str = ""  # public address of the endpoint, for the Atom feeds' links
    feed_title: str = "Statements"
    feed_author: str = "statement-bot"
    statement_link: str = ""  # "https://t.me/examplebot?start=s_{id}": a statement's link


@dataclass(slots=True)
class FeedsConfig:
    """Website feeds (RSS / Atom) polled into the archive; the list lives in the database."""

    enabled: bool = True
    poll_interval: float = 900.0
    timeout: float = 20.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    backoff_max: float = 21600.0
    hold: bool = False
    import_history: bool = True
    flood_limit: int = 10


@dataclass(slots=True)
class InboxConfig:
    dir: str = ""  # a folder whose new statement files are published; empty: off
    interval: float = 1.0


@dataclass(slots=True)
class Config:
    database: str = "statement-bot.db"
    admins: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    log_format: str = "auto"  # auto | json | text
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    matrix: MatrixConfig = field(default_factory=MatrixConfig)
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    broadcast: BroadcastConfig = field(default_factory=BroadcastConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    inbox: InboxConfig = field(default_factory=InboxConfig)
    source: str = ""  # the TOML file that was read, for messages

    def is_admin(self, platform: str, user_id: str) -> bool:
        return f"{platform}:{user_id}" in self.admins


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    database: str | None = None,
) -> Config:
    """Read the TOML file (if any), apply the environment, validate."""
    env = os.environ if env is None else env
    config = Config()
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError("--config", f"no such file {str(path)!r}")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
        _apply_toml(config, data, "")
        config.source = str(path)
    _apply_env(config, env, "")
    if database:
        config.database = database
    _read_secret_files(config)
    _validate(config)
    return config


def _fields(obj: object) -> dict[str, dataclasses.Field[typing.Any]]:
    return {f.name: f for f in dataclasses.fields(obj) if f.name != "source"}  # type: ignore[arg-type]


def _apply_toml(obj: object, data: Mapping[str, object], prefix: str) -> None:
    known = _fields(obj)
    hints = typing.get_type_hints(type(obj))
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise ConfigError(name, f"unknown setting; known here: {', '.join(sorted(known))}")
        if name in SECRETS:
            raise ConfigError(
                name,
                f"secrets are not read from the config file; set {_env_name(name)} "
                f"or {key}_file = '/path/to/file'",
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(name, "expected a table like [" + name + "]")
            _apply_toml(current, value, f"{name}.")
        else:
            setattr(obj, key, _coerce(name, value, hints[key]))


def _apply_env(obj: object, env: Mapping[str, str], prefix: str) -> None:
    hints = typing.get_type_hints(type(obj))
    for key in _fields(obj):
        name = f"{prefix}{key}"
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply_env(current, env, f"{name}.")
            continue
        raw = env.get(_env_name(name))
        if raw is not None and raw != "":
            setattr(obj, key, _coerce(_env_name(name), raw, hints[key]))


def _env_name(setting: str) -> str:
    return ENV_PREFIX + setting.replace(".", "_").upper()


def _coerce(name: str, value: object, hint: object) -> object:
    origin = typing.get_origin(hint)
    if origin in (list, types.GenericAlias) or hint is list or origin is list:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(name, "expected a list of strings (or a comma-separated string)")
    if hint is bool:
        if isinstance(value, bool):
            return value
        words = {"1": True, "true": True, "yes": True, "on": True}
        words |= {"0": False, "false": False, "no": False, "off": False}
        if isinstance(value, str) and value.lower() in words:
            return words[value.lower()]
        raise ConfigError(name, "expected true or false")
    if hint is int:
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(name, f"expected a whole number, got {value!r}") from None
    if hint is float:
        try:
            return float(str(value))
        except ValueError:
            raise ConfigError(name, f"expected a number, got {value!r}") from None
    if not isinstance(value, str):
        raise ConfigError(name, f"expected a string, got {value!r}")
    return value


def _read_secret_files(config: Config) -> None:
    pairs = [
        (config.telegram, "token", "telegram.token_file"),
        (config.telegram, "webhook_secret", "telegram.webhook_secret_file"),
        (config.matrix, "password", "matrix.password_file"),
        (config.matrix, "access_token", "matrix.access_token_file"),
    ]
    for section, attr, setting in pairs:
        file_name = getattr(section, f"{attr}_file")
        if getattr(section, attr) or not file_name:
            continue
        try:
            secret = Path(file_name).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(setting, f"cannot read {file_name!r}: {exc.strerror}") from None
        if not secret:
            raise ConfigError(setting, f"{file_name!r} is empty")
        setattr(section, attr, secret)


def _validate(config: Config) -> None:
    for admin in config.admins:
        platform, _, user = admin.partition(":")
        if platform not in {"telegram", "matrix", "console"} or not user:
            raise ConfigError(
                "admins",
                f"{admin!r} is not 'telegram:<user id>' or 'matrix:<@user:server>'",
            )
        if platform == "telegram" and not user.isdigit():
            raise ConfigError("admins", f"{admin!r}: a Telegram user id is a number")
        if platform == "matrix" and not (user.startswith("@") and ":" in user[1:]):
            raise ConfigError("admins", f"{admin!r}: a Matrix user id looks like @name:server")
    tg = config.telegram
    if tg.token and ":" not in tg.token:
        raise ConfigError(
            "STATEMENT_BOT_TELEGRAM_TOKEN",
            "does not look like a bot token from @BotFather (digits:letters)",
        )
    if not tg.api_url.startswith(("http://", "https://")):
        raise ConfigError("telegram.api_url", "expected an http(s) URL")
    if tg.mode not in {"polling", "webhook"}:
        raise ConfigError("telegram.mode", "expected 'polling' or 'webhook'")
    if tg.enabled and tg.mode == "webhook" and not tg.webhook_url:
        raise ConfigError("telegram.webhook_url", "webhook mode needs the public https URL")
    mx = config.matrix
    if mx.enabled:
        if not mx.homeserver.startswith(("http://", "https://")):
            raise ConfigError(
                "STATEMENT_BOT_MATRIX_HOMESERVER",
                "set it to the homeserver URL, e.g. https://matrix.example.org",
            )
        if not (mx.user_id.startswith("@") and ":" in mx.user_id):
            raise ConfigError(
                "STATEMENT_BOT_MATRIX_USER_ID", "set it to the bot's user id, e.g. @bot:example.org"
            )
        if not (mx.password or mx.access_token):
            raise ConfigError(
                "STATEMENT_BOT_MATRIX_PASSWORD",
                "the Matrix account needs STATEMENT_BOT_MATRIX_PASSWORD or "
                "STATEMENT_BOT_MATRIX_ACCESS_TOKEN (or matrix.password_file / "
                "matrix.access_token_file in the config file)",
            )
    if not mx.command_prefix or len(mx.command_prefix) > 3 or mx.command_prefix.isalnum():
        raise ConfigError("matrix.command_prefix", "expected 1-3 punctuation characters like '!'")
    if config.commands.rate_per_minute < 1:
        raise ConfigError("commands.rate_per_minute", "expected at least 1")
    if not 1 <= config.commands.page_size <= 20:
        raise ConfigError("commands.page_size", "expected 1 to 20")
    if config.log_format not in {"auto", "json", "text"}:
        raise ConfigError("log_format", "expected auto, json or text")
    _validate_sources(config)


def _validate_sources(config: Config) -> None:
    """[feeds], [inbox] and the Atom settings of [http]."""
    http = config.http
    if http.base_url and not http.base_url.startswith(("http://", "https://")):
        raise ConfigError("http.base_url", "expected an http(s) URL like https://bot.example.org")
    if http.statement_link:
        if not http.statement_link.startswith(("http://", "https://")):
            raise ConfigError("http.statement_link", "expected an http(s) URL")
        if "{id}" not in http.statement_link and "{slug}" not in http.statement_link:
            raise ConfigError(
                "http.statement_link",
                "put {id} or {slug} where the statement goes, e.g. "
                "https://t.me/examplebot?start=s_{id}",
            )
    feeds = config.feeds
    if feeds.poll_interval < 60:
        raise ConfigError("feeds.poll_interval", "expected at least 60 seconds")
    if feeds.timeout <= 0:
        raise ConfigError("feeds.timeout", "expected a number of seconds above 0")
    if feeds.max_bytes < 1024:
        raise ConfigError("feeds.max_bytes", "expected at least 1024")
    if not 0 <= feeds.max_redirects <= 20:
        raise ConfigError("feeds.max_redirects", "expected 0 to 20")
    if feeds.backoff_max < feeds.poll_interval:
        raise ConfigError("feeds.backoff_max", "expected at least feeds.poll_interval")
    if feeds.flood_limit < 1:
        raise ConfigError("feeds.flood_limit", "expected at least 1")
    if config.inbox.interval < 0.1:
        raise ConfigError("inbox.interval", "expected at least 0.1 seconds")


def describe(config: Config) -> dict[str, object]:
    """The settings as a dict for display, with secrets masked."""

    def walk(obj: object, prefix: str) -> dict[str, object]:
        out: dict[str, object] = {}
        for key in _fields(obj):
            value = getattr(obj, key)
            name = f"{prefix}{key}"
            if dataclasses.is_dataclass(value):
                out[key] = walk(value, f"{name}.")
            elif name in SECRETS:
                out[key] = "***" if value else ""
            else:
                out[key] = value
        return out

    return walk(config, "")
