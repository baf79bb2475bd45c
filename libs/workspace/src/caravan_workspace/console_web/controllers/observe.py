"""The metrics, alerts and deployments pages: what Prometheus, Alertmanager, stage 15's alert
receiver and stage 14's deployments report, each with a banner when its source is not there."""

from __future__ import annotations

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Template

from caravan_workspace.console_web.context import ConsoleDep
from caravan_workspace.console_web.readers.alerts import alerts_view, runbook_path
from caravan_workspace.console_web.readers.deployments import DEPLOYMENT_STAGE, deployments_view
from caravan_workspace.console_web.readers.metrics import PrometheusDown, prometheus_url, sparkline
from caravan_workspace.console_web.readers.plan import read_records, stage_rows
from caravan_workspace.registry import Context


class ObserveController(Controller):
    @get("/metrics", sync_to_thread=True)
    def metrics(self, console: ConsoleDep) -> Template:
        try:
            rows, problem = console.metrics.rows(console.state_dir), ""
        except PrometheusDown as exc:
            rows, problem = [], str(exc)
        context = {
            "page": "metrics", "rows": rows, "problem": problem, "sparkline": sparkline,
            "prometheus": prometheus_url(console.state_dir),
        }  # fmt: skip
        return Template(template_name="metrics.html.j2", context=context)

    @get("/alerts", sync_to_thread=True)
    def alerts(self, console: ConsoleDep) -> Template:
        view = alerts_view(console.state_dir, console.root)
        return Template(template_name="alerts.html.j2", context={"page": "alerts", "view": view})

    @get("/alerts/runbooks/{name:str}", sync_to_thread=True)
    def runbook(self, console: ConsoleDep, name: FromPath[str]) -> Template:
        path = runbook_path(console.root, name)
        if path is None:
            raise NotFoundException(
                f"no runbook for alert {name!r} (runbooks live in observability/runbooks/)"
            )
        context = {"page": "alerts", "name": name, "text": path.read_text(encoding="utf-8")}
        return Template(template_name="runbook.html.j2", context=context)

    @get("/deployments", sync_to_thread=True)
    def deployments(self, console: ConsoleDep) -> Template:
        records, _ = read_records(console.state_dir)
        rows = stage_rows(console.plan, records, set())
        stage = next((r for r in rows if r.stage.number == DEPLOYMENT_STAGE), None)
        view = deployments_view(Context(console.root, console.state_dir), stage)
        context = {"page": "deployments", "view": view}
        return Template(template_name="deployments.html.j2", context=context)
