"""python-telegram-bot's network layer over aiohttp, for the bot's own requests.

Profiling a broadcast showed ~85 % of each send's CPU in httpx/httpcore; the same
requests over aiohttp (already a dependency) cost a fraction of that, which is what
lets one core keep up with Telegram's paid broadcast rate. Long polling keeps PTB's
default httpx client. The bot uploads no files, so only form-encoded bodies are needed.

`FormBody` carries parameters already form-encoded: a broadcast encodes a statement once
(percent-encoding 3 KB of HTML in Python took a third of a send's CPU) and posts it to
every chat through `BaseRequest.post`, which maps the Bot API's errors to PTB's
exceptions exactly as `Bot.send_message` does, without building a `Message` from every
answer.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0


class FormBody(RequestData):
    """A request's parameters as an encoded form body (what `json_parameters` would be
    sent as by `AiohttpRequest`)."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    @property
    def json_parameters(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


def form_encode(parameters: dict[str, str]) -> bytes:
    return urlencode(parameters).encode()


class AiohttpRequest(BaseRequest):
    def __init__(self, pool_size: int, pool_timeout: float = 10.0) -> None:
        self._pool_size = pool_size
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return DEFAULT_READ_TIMEOUT

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            self._session = aiohttp.ClientSession(connector=connector)

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
        write_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
        connect_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
        pool_timeout: float | object | None = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        if request_data is not None and request_data.contains_files:
            raise NetworkError("file uploads are not supported by this request class")
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=_seconds(connect_timeout, DEFAULT_CONNECT_TIMEOUT),
            sock_read=_seconds(read_timeout, DEFAULT_READ_TIMEOUT),
            connect=_seconds(pool_timeout, self._pool_timeout),
        )
        headers = {"User-Agent": self.USER_AGENT}
        data: bytes | dict[str, str] | None
        if isinstance(request_data, FormBody):
            data = request_data.body
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = request_data.json_parameters if request_data else None
        try:
            async with self._session.request(
                method, url, data=data, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _seconds(value: object, default: float) -> float | None:
    if value is BaseRequest.DEFAULT_NONE:
        return default
    if value is None:
        return None
    assert isinstance(value, int | float)
    return float(value)
