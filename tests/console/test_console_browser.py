"""The console in Chromium against a running system: the plan graph, a restart from the page, the
order's waterfall, a log filter by trace id, the pages' banners; a screenshot of each page."""

from __future__ import annotations

import re
import time

import pytest
from conftest import screenshot
from playwright.sync_api import Page, expect
from system import System

from caravan_workspace.traces import find_trace, read_spans

PAGES = ("plan", "programs", "logs", "traces", "metrics", "alerts", "deployments")
HOPS = {"gateway", "svc-a", "svc-b", "svc-c"}


def base(page: Page) -> str:
    return re.match(r"http://[^/]+", page.url).group(0)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def order(system: System) -> dict[str, str]:
    """A confirmed order and its trace id, once every hop's spans are in the files."""
    system.wait_in_discovery()  # a test before may have restarted a service: routable again first
    sku = system.new_product(stock=5)
    placed = system.settled(system.place_order([(sku, 1)]).json()["id"])
    assert placed["status"] == "confirmed", placed
    deadline = time.monotonic() + 30
    while True:
        found = find_trace(read_spans(system.state_dir / "traces"), placed["id"])
        if found is not None and found.services() >= HOPS:
            return {"id": placed["id"], "trace_id": found.trace_id}
        assert time.monotonic() < deadline, f"no complete trace of order {placed['id']}"
        time.sleep(0.5)


def test_the_plan_graph_shows_every_stages_status(page: Page) -> None:
    page.goto(base(page) + "/plan")
    graph = page.locator("#graph svg")
    expect(graph).to_be_visible()
    statuses = ("passed", "failed", "blocked", "refused", "running", "not run")
    for n in range(1, 16):
        box = page.locator(f"#graph #stage_{n}")
        expect(box).to_be_visible()
        assert box.locator("text").all_text_contents()[-1].strip() in statuses  # the box's second line
        assert page.locator(f'#stages tr[data-stage="{n}"] .status').inner_text() in statuses
    page.locator("#graph #stage_4").click()  # the graph is the way in to a stage's gates
    expect(page).to_have_url(re.compile(r"/plan/stages/4$"))
    expect(page.locator("#stage h2")).to_contain_text("Stage 4")
    expect(page.locator("#stage table.gates tbody tr").first).to_be_visible()
    screenshot(page, "plan")


def test_a_stage_run_from_the_page_streams_its_progress(page: Page) -> None:
    page.goto(base(page) + "/plan/stages/1")
    before = page.locator("#stage-gates td.at").first.inner_text()
    page.select_option('select[name="mode"]', "gates-only")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#run-lines")).to_contain_text("stage 1", timeout=60_000)
    expect(page.locator("#run-done")).to_contain_text("invoke stage 1 --gates-only:", timeout=180_000)
    assert re.search(r"[✓✗] gate", page.locator("#run-lines").inner_text())  # each gate as it finished
    screenshot(page, "plan-run")
    # the gates table is refreshed from what the run recorded (where `invoke plan` reads it)
    expect(page.locator("#stage-gates td.at").first).not_to_have_text(before)


def test_a_program_restarted_from_the_page_comes_back(page: Page) -> None:
    page.goto(base(page) + "/programs")
    row = page.locator('tr[data-program="svc-a-1"]')
    expect(row.locator(".state")).to_have_text("RUNNING")
    before = row.locator("td").nth(3).inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="restart").click()
    expect(page.locator("#programs .banner.ok")).to_contain_text("restart: svc-a-1 done")
    deadline = time.monotonic() + 60
    while True:  # back: running, a new pid, ready
        page.goto(base(page) + "/programs")
        row = page.locator('tr[data-program="svc-a-1"]')
        state, pid, ready = (
            row.locator(".state").inner_text(),
            row.locator("td").nth(3).inner_text(),
            row.locator("td").nth(8).inner_text(),
        )
        if state == "RUNNING" and pid != before and ready == "ready":
            break
        assert time.monotonic() < deadline, f"svc-a-1 did not come back: {state}, pid {pid}, {ready}"
        time.sleep(0.5)
    assert int(row.locator("td").nth(5).inner_text()) >= 1  # restarts counted
    screenshot(page, "programs")


def test_the_orders_trace_renders_as_a_waterfall(page: Page, order: dict[str, str]) -> None:
    page.goto(base(page) + "/traces")
    page.fill('input[name="find"]', order["id"])
    page.get_by_role("button", name="Show its trace").click()
    expect(page).to_have_url(re.compile(f"/traces/{order['trace_id']}$"))
    spans = page.locator("#waterfall details.span")
    expect(spans.first).to_be_visible()
    services = {s.strip() for s in page.locator("#waterfall .label b").all_inner_texts()}
    assert services >= HOPS
    bars = page.locator("#waterfall .bar")
    assert bars.count() == spans.count() >= 4
    assert bars.first.bounding_box()["width"] > bars.last.bounding_box()["width"] > 0  # type: ignore[index]
    spans.first.locator("summary").click()  # span details: its attributes
    expect(spans.first.locator("table.attrs")).to_contain_text("url.path")
    screenshot(page, "trace")
    page.goto(base(page) + "/traces?orders=true")
    expect(page.locator(f'tr[data-trace="{order["trace_id"]}"]')).to_contain_text(order["id"])
    screenshot(page, "traces")


def test_a_log_filter_by_trace_id_finds_the_orders_lines(page: Page, order: dict[str, str]) -> None:
    page.goto(base(page) + "/logs/svc-b-1")
    page.fill('input[name="trace"]', order["trace_id"])
    page.get_by_role("button", name="Filter").click()
    lines = page.locator("#log-lines tr")
    expect(lines.first).to_be_visible()
    links = page.locator("#log-lines a.trace")
    assert links.count() == lines.count() >= 1  # every line shown is the order's
    assert {links.nth(i).get_attribute("href") for i in range(links.count())} == {
        f"/traces/{order['trace_id']}"
    }
    screenshot(page, "logs")
    links.first.click()  # a line's trace id leads to its trace
    expect(page).to_have_url(re.compile(f"/traces/{order['trace_id']}$"))


def test_metrics_alerts_and_deployments_render(page: Page, order: dict[str, str]) -> None:
    # The page's points fall on whole minutes (docs/console.md): the order's traffic shows from the
    # first whole minute after it, so the page is read again until then.
    deadline = time.monotonic() + 75
    while True:
        page.goto(base(page) + "/metrics")
        if page.locator("table.metrics").count() or time.monotonic() > deadline:
            break
        time.sleep(2)
    expect(page.locator("table.metrics")).to_be_visible()  # Prometheus runs: no banner
    expect(page.locator('tr[data-route^="gateway "]').first).to_be_visible()
    screenshot(page, "metrics")
    page.goto(base(page) + "/alerts")
    expect(page.locator("h1")).to_have_text("Alerts")
    expect(page.locator("#alertmanager-down")).to_have_count(0)  # Alertmanager runs
    screenshot(page, "alerts")
    page.goto(base(page) + "/deployments")
    expect(page.locator("h1")).to_have_text("Deployments")
    screenshot(page, "deployments")


def test_an_unknown_program_gets_an_error_page(page: Page) -> None:
    answer = page.goto(base(page) + "/logs/no-such-program")
    assert answer is not None and answer.status == 404
    expect(page.locator("#problem")).to_contain_text("no-such-program")


def test_a_stopped_service_shows_up_as_an_alert(page: Page, system: System) -> None:
    """Stage 15's path end to end: Prometheus's InstanceDown (``for: 5s``) through Alertmanager to
    the workspace's receiver, whose log the page shows, with the alert's runbook."""
    page.goto(base(page) + "/programs")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('tr[data-program="svc-c-1"]').get_by_role("button", name="stop").click()
    try:
        deadline = time.monotonic() + 60
        while True:
            page.goto(base(page) + "/alerts")
            firing = page.locator('#received tr.firing[data-alert="InstanceDown"]', has_text="svc-c-1")
            if firing.count():
                break
            assert time.monotonic() < deadline, "the receiver got no InstanceDown of svc-c-1 within 60 s"
            time.sleep(1)
        screenshot(page, "alerts-firing")
        firing.first.get_by_role("link", name="runbook").click()
        expect(page).to_have_url(re.compile(r"/alerts/runbooks/InstanceDown$"))
        expect(page.locator("main")).to_contain_text("Mitigate")
    finally:
        system.runtime.supervisor.start("svc-c-1")
