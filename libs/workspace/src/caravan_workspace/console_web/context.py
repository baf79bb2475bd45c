"""What every page reads from: the settings, the plan and service declarations (loaded once),
and the caches and runs the console keeps. One instance per app, in ``app.state.console``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from litestar import Request
from litestar.di import NamedDependency

from caravan_workspace import paths
from caravan_workspace.console_web.readers.metrics import MetricsCache
from caravan_workspace.console_web.readers.plan import GraphCache
from caravan_workspace.console_web.readers.traces import SpanCache
from caravan_workspace.console_web.runs import Runs
from caravan_workspace.console_web.settings import ConsoleSettings
from caravan_workspace.plan import Plan, load_plan
from caravan_workspace.services import Service, load_services


@dataclass
class Console:
    settings: ConsoleSettings
    plan: Plan
    services: dict[str, Service]
    graphs: GraphCache = field(default_factory=GraphCache)
    metrics: MetricsCache = field(default_factory=MetricsCache)
    spans: SpanCache = field(init=False)
    runs: Runs = field(init=False)

    def __post_init__(self) -> None:
        self.spans = SpanCache(self.state_dir / "traces")
        self.runs = Runs(self.root, self.state_dir)

    @classmethod
    def load(cls, settings: ConsoleSettings) -> Console:
        plan = load_plan(settings.root / paths.PLAN_FILE)
        return cls(settings, plan, load_services(settings.root))

    @property
    def root(self) -> Path:
        return self.settings.root

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    def running_stages(self) -> set[int]:
        run = self.runs.active()
        return {run.stage} if run else set()


ConsoleDep = NamedDependency[Console]


def provide_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def is_fragment(request: Request) -> bool:
    """An htmx request wants the part of the page it swaps, not the whole page."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"
