"""WeCom's server API (https://qyapi.weixin.qq.com/cgi-bin/..., ``[wecom] api_base``): one client per secret.

The access token is cached in memory and in the ``wecom_tokens`` table (shared by the processes on one database)
and refreshed ``REFRESH_BEFORE_S`` before it expires. Answers map onto the transport errors the governor acts on:

* errcode 40014 / 42001 / 41001 (invalid, expired, missing token) → the token is refreshed once and the call
  tried once more;
* 45009 (API quota, 发送次数超限) → RefusedError("quota"); 95000–95999 (微信客服: session state, the 48 h / 5
  message window) → RefusedError("window"): dropped with the reason, never retried in a loop;
* gettoken refused (40001 / 40013 / 40091: wrong secret or corp id) → FatalTransportError: held until an operator
  acts;
* the connection never opened → NotConnectedError (nothing left: the governor holds and probes with back-off);
  a timeout or broken connection once a send was under way → UncertainDeliveryError (never sent twice);
* any other errcode → TransportError (retried a few times by the governor, then dropped).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from yarl import URL

from bot.clock import Clock
from bot.transports.base import (
    FatalTransportError,
    NotConnectedError,
    RefusedError,
    TransportError,
    UncertainDeliveryError,
)
from storage import wecom as store

log = logging.getLogger(__name__)

DEFAULT_BASE = "https://qyapi.weixin.qq.com"
TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0
REFRESH_BEFORE_S = 300  # a token is renewed this long before WeCom says it expires
TOKEN_ERRORS = frozenset({40014, 42001, 41001})
CREDENTIAL_ERRORS = frozenset({40001, 40013, 40091})
QUOTA_ERRORS = frozenset({45009, 45033, 41063})  # 41063: 企业群发 monthly limit (群发消息超过上限)


def window_error(errcode: int) -> bool:
    return 95000 <= errcode <= 95999


class WeComApiError(TransportError):
    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"{path}: errcode {errcode} ({errmsg[:120]})")
        self.errcode = errcode


class WeComApi:
    """Calls to WeCom with one secret (the self-built app's, or 微信客服's): ``post(path, body)`` →
    the answer's JSON object, errcode 0."""

    def __init__(self, base_url: str, corp_id: str, secret: str, sessions: async_sessionmaker[AsyncSession],
                 clock: Clock, *, secret_name: str = "app", timeout_s: float = TIMEOUT_S) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("[wecom] api_base must start with http:// or https://")
        if not corp_id or not secret:
            raise ValueError("the WeCom API needs the corp id and a secret")
        self.base_url = base_url.rstrip("/")
        self.corp_id = corp_id
        self._secret = secret  # never logged
        self._sessions = sessions
        self._clock = clock
        self._token_name = f"{corp_id}:{secret_name}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(CONNECT_TIMEOUT_S, timeout_s))
        self._token: tuple[str, datetime] | None = None
        self._refreshing = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None
        self.calls: Counter[str] = Counter()  # round trips by path (benchmarks, tests)

    def __repr__(self) -> str:
        return f"WeComApi({str(URL(self.base_url).origin())!r}, corp={self.corp_id!r})"

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- the token --------------------------------------------------------------------------------------------------

    def _fresh(self, token: tuple[str, datetime] | None) -> bool:
        return token is not None and self._clock.now() < token[1] - timedelta(seconds=REFRESH_BEFORE_S)

    async def access_token(self) -> str:
        if self._fresh(self._token):
            return self._token[0]  # type: ignore[index]
        async with self._refreshing:
            if self._fresh(self._token):
                return self._token[0]  # type: ignore[index]
            async with self._sessions() as session:
                stored = await store.token(session, self._token_name)
            if not self._fresh(stored):
                stored = await self._gettoken()
            self._token = stored
            return stored[0]  # type: ignore[index]

    async def _gettoken(self) -> tuple[str, datetime]:
        answer = await self._request("GET", "/cgi-bin/gettoken", params={"corpid": self.corp_id,
                                                                          "corpsecret": self._secret})
        errcode = answer.get("errcode", 0)
        if errcode in CREDENTIAL_ERRORS:
            raise FatalTransportError(f"WeCom refused the corp id or secret (errcode {errcode})")
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if errcode or not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise TransportError(f"gettoken: errcode {errcode}")
        value = (token, self._clock.now() + timedelta(seconds=expires_in))
        async with self._sessions() as session:
            await store.save_token(session, self._token_name, *value)
            await session.commit()
        log.info("WeCom access token refreshed (valid %d s)", expires_in)
        return value

    async def _forget_token(self, token: str) -> None:
        self._token = None
        async with self._sessions() as session:
            await store.drop_token(session, self._token_name, token)
            await session.commit()

    # -- calls ------------------------------------------------------------------------------------------------------

    async def post(self, path: str, body: dict, *, sending: bool = False) -> dict:
        return await self._call("POST", path, body=body, sending=sending)

    async def get(self, path: str, params: dict[str, str]) -> dict:
        return await self._call("GET", path, params=params)

    async def _call(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None,
                    sending: bool = False) -> dict:
        for attempt in (1, 2):
            token = await self.access_token()
            answer = await self._request(method, path, body=body, params={**(params or {}), "access_token": token},
                                         sending=sending)
            errcode = answer.get("errcode", 0)
            if errcode in TOKEN_ERRORS and attempt == 1:
                log.info("WeCom said the access token is invalid (errcode %d): refreshing it once", errcode)
                await self._forget_token(token)
                continue
            if not errcode:
                return answer
            errmsg = str(answer.get("errmsg", ""))
            if errcode in QUOTA_ERRORS:
                raise RefusedError("quota", f"{path}: errcode {errcode}")
            if window_error(errcode):
                raise RefusedError("window", f"{path}: errcode {errcode}")
            raise WeComApiError(errcode, errmsg, path)
        raise AssertionError("unreachable")

    async def _request(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None,
                       sending: bool = False) -> dict:
        if self._http is None:
            raise NotConnectedError("the WeCom API client is not started")
        self.calls[path] += 1
        try:
            async with self._http.request(method, self.base_url + path, json=body, params=params) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NotConnectedError(f"WeCom unreachable ({type(exc).__name__})") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            if sending:
                raise UncertainDeliveryError(f"{path}: no answer ({type(exc).__name__}); it may have arrived") \
                    from None
            raise TransportError(f"{path}: {type(exc).__name__}") from None
        if status != 200:
            raise TransportError(f"{path}: HTTP {status}")
        try:
            answer: Any = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise TransportError(f"{path}: the answer is not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("errcode", 0), int):
            raise TransportError(f"{path}: the answer is not a JSON object with an errcode")
        return answer
