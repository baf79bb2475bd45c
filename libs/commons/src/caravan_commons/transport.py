"""The transport under :class:`~caravan_commons.client.ServiceClient`: one HTTP exchange, no policy.

:class:`AiohttpTransport` is the one in use (aiohttp's pooled ``ClientSession``: one per client,
opened and closed with the app). Retries, deadlines, circuit breaking and error mapping live in
the client, so replacing the HTTP library means writing another :class:`Transport`.
A failed exchange raises :class:`AttemptFailed` carrying the typed error and whether the request
may have reached the server (``sent``): only unsent requests may be retried whatever the method.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Mapping

import aiohttp

from caravan_commons.client_types import Response
from caravan_commons.discovery import Instance
from caravan_commons.errors import ApplicationError, DeadlineExceededError, UpstreamUnavailableError


class AttemptFailed(Exception):
    def __init__(self, error: ApplicationError, *, sent: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.sent = sent


class Transport(abc.ABC):
    @property
    @abc.abstractmethod
    def started(self) -> bool: ...

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def send(
        self,
        instance: Instance,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: float,
    ) -> Response:
        """One exchange; :class:`AttemptFailed` (``DeadlineExceededError`` when ``timeout`` passed)."""


class AiohttpTransport(Transport):
    def __init__(
        self, *, pool_limit: int, pool_limit_per_host: int, connect_timeout: float, user_agent: str
    ) -> None:
        self._options = (pool_limit, pool_limit_per_host, connect_timeout, user_agent)
        self._session: aiohttp.ClientSession | None = None

    @property
    def started(self) -> bool:
        return self._session is not None

    async def start(self) -> None:
        if self._session is None:
            limit, per_host, connect_timeout, user_agent = self._options
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, limit_per_host=per_host),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
                headers={"User-Agent": user_agent},
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def send(
        self,
        instance: Instance,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        content: bytes | None,
        timeout: float,
    ) -> Response:
        session = self._session
        if session is None:
            raise RuntimeError("the transport is not started")
        service = instance.service
        limit = asyncio.timeout(timeout)
        try:
            async with (
                limit,
                session.request(
                    method,
                    instance.base_url + path,
                    params=params,
                    data=content,
                    headers=headers,
                    allow_redirects=False,
                ) as answer,
            ):
                body = await answer.read()
                return Response(
                    service,
                    instance,
                    answer.status,
                    answer.headers,
                    body,  # a read-only CIMultiDictProxy
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise AttemptFailed(
                UpstreamUnavailableError(
                    f"connecting to {service} ({instance.instance_id}) timed out", upstream=service
                ),
                sent=False,
            ) from exc
        except TimeoutError as exc:
            if not limit.expired():
                raise AttemptFailed(
                    UpstreamUnavailableError(
                        f"{service} ({instance.instance_id}) timed out: {exc}", upstream=service
                    ),
                    sent=True,
                ) from exc
            raise AttemptFailed(
                DeadlineExceededError(
                    f"{service} ({instance.instance_id}) did not answer within the deadline", upstream=service
                ),
                sent=True,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise AttemptFailed(
                UpstreamUnavailableError(
                    f"cannot connect to {service} ({instance.instance_id})", upstream=service
                ),
                sent=False,
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise AttemptFailed(
                UpstreamUnavailableError(
                    f"{service} ({instance.instance_id}) failed mid-request: {type(exc).__name__}",
                    upstream=service,
                ),
                sent=True,
            ) from exc
