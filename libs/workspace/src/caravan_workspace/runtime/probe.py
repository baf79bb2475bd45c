"""The security probe: a commons app standing in for a service, so stage 1 can prove the allowed
flows are enforced before any real service is deployed.

It runs under the supervisor as program ``probe`` with the identity settings of the service it
stands in for (the same environment the runtime gives that service), and answers ``GET /probe``
with the verified caller. ``python -m caravan_workspace.runtime.probe``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import Litestar, Request, get
from litestar.params import Parameter

from caravan_commons.app import create_app
from caravan_commons.identity import caller_of
from caravan_commons.server import run_service
from caravan_commons.settings import ServiceSettings


class ProbeAnswer(msgspec.Struct):
    service: str
    caller: str | None


@get("/probe", sync_to_thread=False)
def probe(request: Request) -> ProbeAnswer:
    return ProbeAnswer(service=request.app.state.settings.service_name, caller=caller_of(request.scope))


@get("/probe/slow")
async def slow(request: Request, seconds: Annotated[float, Parameter(ge=0, le=10)] = 1.0) -> ProbeAnswer:
    """Answers after ``seconds``: lets tests prove that a graceful stop drains in-flight requests."""
    await asyncio.sleep(seconds)
    return ProbeAnswer(service=request.app.state.settings.service_name, caller=caller_of(request.scope))


def build(settings: ServiceSettings) -> Litestar:
    return create_app(settings, route_handlers=[probe, slow], openapi_title="caravan security probe")


def main() -> None:
    run_service(build, ServiceSettings)


if __name__ == "__main__":
    main()
