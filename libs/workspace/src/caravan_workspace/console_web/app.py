"""``create_app(settings)``: the console's only entry point."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from litestar import Litestar
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from caravan_workspace.console_web import errors
from caravan_workspace.console_web.auth import PUBLIC, require_login
from caravan_workspace.console_web.context import Console, provide_console
from caravan_workspace.console_web.controllers.logs import LogsController
from caravan_workspace.console_web.controllers.observe import ObserveController
from caravan_workspace.console_web.controllers.plan import PlanController
from caravan_workspace.console_web.controllers.programs import ProgramsController
from caravan_workspace.console_web.controllers.session import SessionController
from caravan_workspace.console_web.controllers.traces import TracesController
from caravan_workspace.console_web.settings import ConsoleSettings

HERE = Path(__file__).parent
CSRF_COOKIE = "caravan_console_csrf"


def local_hosts(port: int) -> list[str]:
    names = ("127.0.0.1", "localhost")
    return [*names, *(f"{name}:{port}" for name in names)]


def create_app(settings: ConsoleSettings) -> Litestar:
    console = Console.load(settings)
    csrf_secret = hmac.new(settings.token.encode(), b"caravan-console-csrf", hashlib.sha256).hexdigest()
    return Litestar(
        route_handlers=[
            SessionController,
            PlanController,
            ProgramsController,
            LogsController,
            TracesController,
            ObserveController,
            create_static_files_router("/static", directories=[HERE / "static"], opt={PUBLIC: True}),
        ],
        dependencies={"console": Provide(provide_console, sync_to_thread=False)},
        guards=[require_login],
        # A page elsewhere that rebinds its name to 127.0.0.1 still sends its own Host: refused.
        allowed_hosts=AllowedHostsConfig(allowed_hosts=local_hosts(settings.port)),
        csrf_config=CSRFConfig(secret=csrf_secret, cookie_name=CSRF_COOKIE, cookie_samesite="strict"),
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        exception_handlers={HTTPException: errors.http_error, Exception: errors.internal_error},
        state=State({"console": console, "settings": settings}),
        openapi_config=None,
    )
