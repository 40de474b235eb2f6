"""A throwaway Synapse homeserver for tests.

Why a real server: the Matrix adapter must be proven against what a homeserver really does
(rate limits with ``retry_after_ms``, power levels, end-to-end encryption), not against a mock.
Synapse is AGPL and test-only: it lives in its own virtualenv (``make synapse``) and runs as a
subprocess; the bot never imports it.

Only the standard library is used for the synchronous parts so that a session fixture can start
and drive the server without an event loop.

PYTEST_DONT_REWRITE: no asserts here; the marker stops pytest warning that a plugin module
(``pytest_plugins = ["synapse"]``) was imported before it could be rewritten.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNAPSE_PYTHON_ENV = "STATEMENT_BOT_SYNAPSE_PYTHON"
START_TIMEOUT = 60.0

# Every rate limiter Synapse 1.163 reads (synapse/config/ratelimiting.py), as dotted keys.
# rc_message is handled separately: the strict server keeps its default (0.2/s, burst 10).
_RELAXED_LIMIT_KEYS = (
    "rc_registration",
    "rc_registration_token_validity",
    "rc_login.address",
    "rc_login.account",
    "rc_login.failed_attempts",
    "rc_admin_redaction",
    "rc_joins.local",
    "rc_joins.remote",
    "rc_joins_per_room",
    "rc_key_requests",
    "rc_3pid_validation",
    "rc_invites.per_room",
    "rc_invites.per_user",
    "rc_invites.per_issuer",
    "rc_third_party_invite",
    "rc_media_create",
    "rc_presence.per_user",
    "rc_delayed_event_mgmt",
    "rc_room_creation",
    "rc_reports",
    "rc_user_directory",
    "rc_profile",
)
_RELAXED = {"per_second": 1000, "burst_count": 1000}


@dataclass
class RegisteredUser:
    """A user created through the shared-secret admin API, with a ready access token."""

    user_id: str
    access_token: str
    device_id: str
    password: str
    localpart: str


def synapse_python() -> Path | None:
    """The interpreter of Synapse's own virtualenv, or None when Synapse is not installed."""
    configured = os.environ.get(SYNAPSE_PYTHON_ENV)
    if configured:
        return Path(configured)
    candidate = REPO_ROOT / ".venv-synapse" / "bin" / "python"
    return candidate if candidate.exists() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set_nested(config: dict[str, Any], dotted: str, value: Any) -> None:
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _die_with_parent() -> None:
    """Linux: SIGTERM Synapse if pytest dies, so a killed test run leaves no stray server."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Synapse:
    """A throwaway homeserver on 127.0.0.1."""

    def __init__(
        self,
        workdir: Path,
        *,
        relaxed_limits: bool = True,
        server_name: str = "localhost",
        python: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.relaxed_limits = relaxed_limits
        self.server_name = server_name
        self.python = python or synapse_python()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.shared_secret = secrets.token_hex(32)
        self.log_path = self.workdir / "homeserver.log"
        self.output_path = self.workdir / "synapse.out"
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- configuration -------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """homeserver.yaml as a dict (written as JSON, which YAML reads as it is)."""
        work = self.workdir
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.url + "/",
            "pid_file": str(work / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(work / "homeserver.db")}},
            "media_store_path": str(work / "media_store"),
            "signing_key_path": str(work / "signing.key"),
            "log_config": str(work / "log.config"),
            "registration_shared_secret": self.shared_secret,
            "report_stats": False,
            # Password hashing dominates login time: 4 rounds ~14 ms instead of ~300 ms.
            "bcrypt_rounds": 4,
            "enable_registration": False,
            "enable_metrics": False,
            "url_preview_enabled": False,
            # No federation: no key servers, no remote domains, no federation listener.
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "serve_server_wellknown": False,
            "presence": {"enabled": False},
        }
        if self.relaxed_limits:
            config["rc_message"] = dict(_RELAXED)
        # Everything except rc_message is always relaxed: a strict server exists to provoke
        # M_LIMIT_EXCEEDED on sends, not to slow down room creation, invites and logins.
        for key in _RELAXED_LIMIT_KEYS:
            _set_nested(config, key, dict(_RELAXED))
        return config

    def _log_config(self) -> dict[str, Any]:
        return {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    def _write_files(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "media_store").mkdir(exist_ok=True)
        (self.workdir / "homeserver.yaml").write_text(json.dumps(self.config(), indent=2))
        (self.workdir / "log.config").write_text(json.dumps(self._log_config(), indent=2))
        seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        (self.workdir / "signing.key").write_text(f"ed25519 a_test {seed}\n")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start Synapse and block until it answers /_matrix/client/versions."""
        if self._process is not None:
            raise RuntimeError("Synapse already started")
        if self.python is None:
            raise RuntimeError("Synapse not installed: run `make synapse`")
        self._write_files()
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        began = time.monotonic()
        with self.output_path.open("wb") as output:
            self._process = subprocess.Popen(
                [str(self.python), "-m", "synapse.app.homeserver", "-c", "homeserver.yaml"],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = began + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise RuntimeError(f"Synapse exited with {code} on start\n{self.log_tail()}")
            if self._answers():
                self.startup_seconds = time.monotonic() - began
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"Synapse did not answer within {START_TIMEOUT:.0f} s\n{self.log_tail()}"
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/_matrix/client/versions", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if Synapse has not exited after 10 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        """The end of Synapse's log and console output, for error messages."""
        parts = []
        for path in (self.output_path, self.log_path):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(parts) or "(no Synapse output)"

    # -- admin API -----------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                result: dict[str, Any] = json.loads(resp.read() or b"{}")
                return result
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")
            raise RuntimeError(f"{method} {path} -> {err.code}: {detail}") from err

    def register(
        self, localpart: str, password: str = "secret-pw", admin: bool = False
    ) -> RegisteredUser:
        """Create a user with the shared-secret admin API (registration is closed otherwise)."""
        path = "/_synapse/admin/v1/register"
        nonce = self._request("GET", path)["nonce"]
        mac = hmac.new(self.shared_secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\0".join([nonce.encode(), localpart.encode(), password.encode()]))
        mac.update(b"\0admin" if admin else b"\0notadmin")
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        reply = self._request("POST", path, body)
        return RegisteredUser(
            user_id=reply["user_id"],
            access_token=reply["access_token"],
            device_id=reply["device_id"],
            password=password,
            localpart=localpart,
        )

    def override_ratelimit(self, admin_token: str, user_id: str) -> None:
        """Lift every message rate limit for user_id, as a server admin can for a bot."""
        path = f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit"
        self._request("POST", path, {"messages_per_second": 0, "burst_count": 0}, admin_token)


def _synapse_fixture(tmp_path_factory: pytest.TempPathFactory, relaxed: bool) -> Iterator[Synapse]:
    if synapse_python() is None:
        message = "Synapse not installed: run `make synapse`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    name = "synapse" if relaxed else "synapse-strict"
    server = Synapse(tmp_path_factory.mktemp(name), relaxed_limits=relaxed)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def synapse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """One homeserver for the whole run, with rate limits relaxed so tests stay fast."""
    yield from _synapse_fixture(tmp_path_factory, relaxed=True)


@pytest.fixture(scope="session")
def synapse_strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """A second homeserver with Synapse's default rc_message (0.2/s, burst 10), to hit 429s."""
    yield from _synapse_fixture(tmp_path_factory, relaxed=False)
