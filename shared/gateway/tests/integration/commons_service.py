"""A real Caravan service built with commons (create_app, identity enforcement, granian), run as
its own process by the tests: ``python commons_service.py`` with CARAVAN_* settings."""

from litestar import Request, get

from caravan_commons.app import create_app
from caravan_commons.identity import caller_of
from caravan_commons.server import run_service
from caravan_commons.settings import ServiceSettings


@get("/whoami", sync_to_thread=False)
def whoami(request: Request) -> dict[str, str | None]:
    return {"caller": caller_of(request.scope), "customer": request.headers.get("x-caravan-customer")}


def factory(settings: ServiceSettings):  # type: ignore[no-untyped-def]
    return create_app(settings, route_handlers=[whoami])


if __name__ == "__main__":
    run_service(factory, ServiceSettings)
