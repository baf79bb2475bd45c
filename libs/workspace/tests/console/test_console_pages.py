"""Every page over a state folder in the runtime's formats; bad input gets a 4xx, never a 500;
a missing runtime or Prometheus gets a banner, not an error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from console_support import ORDER, TRACE, csrf
from litestar.testing import TestClient

from caravan_workspace.console_web.context import Console
from caravan_workspace.console_web.readers.logs import LogFilter, read_from
from caravan_workspace.console_web.runs import StageRun
from caravan_workspace.console_web.settings import ConsoleSettings
from caravan_workspace.ops import alert_log
from caravan_workspace.render.model import environment_names, load_deployment, load_environment
from caravan_workspace.state import GateRecord, StateStore


def test_the_plan_graph_shows_every_stage_with_its_status(client: TestClient) -> None:
    page = client.get("/plan")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") :]
    for n in range(1, 16):
        assert f'id="stage_{n}"' in svg and f'href="/plan/stages/{n}"' in svg
    assert "1. Foundation" in svg and "passed" in svg and "failed" in svg and "not run" in svg


def test_a_stage_shows_its_gates_with_result_time_detail_and_fix(client: TestClient) -> None:
    page = client.get("/plan/stages/2")
    assert page.status_code == 200
    gate = page.text[page.text.index('data-gate="gateway"') :]
    assert (
        "failed" in gate
        and "2026-12-07 10:01:00" in gate
        and "no route answers" in gate
        and "invoke stage 2" in gate
    )
    assert "1.20 s" in gate
    assert 'hx-post="/plan/stages/2/run"' in page.text


def test_an_htmx_request_for_a_stage_gets_the_panel_alone(client: TestClient) -> None:
    part = client.get("/plan/stages/1", headers={"hx-request": "true"})
    assert part.status_code == 200 and part.text.lstrip().startswith('<section id="stage"')


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/plan/stages/99", 404),
        ("/plan/stages/x", 404),
        ("/logs/no-such-program", 404),
        ("/logs/..%2F..%2Fstate", 404),
        ("/logs/svc-b-1?trace=not-a-trace", 400),
        ("/logs/svc-b-1?level=LOUD", 400),
        ("/logs?trace=xyz", 400),
        ("/traces/not-a-trace-id", 400),
        ("/traces/" + "f" * 32, 404),
        ("/traces?find=nothing-mentions-this", 404),
        ("/alerts/runbooks/NoSuchAlert", 404),
        ("/alerts/runbooks/..%2Fx", 404),
        ("/plan/runs/nope/events", 404),
        ("/no/such/page", 404),
    ],
)
def test_bad_input_gets_a_clear_error_page_never_a_500(client: TestClient, path: str, status: int) -> None:
    page = client.get(path)
    assert page.status_code == status, page.text
    assert 'id="problem"' in page.text
    api = client.get(path, headers={"accept": "application/json"})
    assert api.status_code == status
    assert api.headers["content-type"].startswith("application/problem+json")


def test_actions_on_unknown_things_are_4xx(client: TestClient) -> None:
    headers = csrf(client)
    assert client.post("/plan/stages/99/run", data={"mode": "deps"}, headers=headers).status_code == 404
    assert client.post("/plan/stages/1/run", data={"mode": "fast"}, headers=headers).status_code == 400
    assert client.post("/programs/svc-b-1/explode", headers=headers).status_code == 400
    # no supervisor runs in this state folder: nothing to act on, said plainly
    down = client.post("/programs/svc-b-1/restart", headers=headers)
    assert down.status_code == 409 and "supervisor is not running" in down.text


def test_programs_say_when_the_runtime_is_down(client: TestClient) -> None:
    page = client.get("/programs")
    assert page.status_code == 200
    assert 'id="runtime-down"' in page.text
    for service in ("svc-a", "svc-b", "svc-c"):
        assert f'data-service="{service}"' in page.text  # instances against the declared bounds


def test_logs_filter_by_level_text_and_trace_id(client: TestClient) -> None:
    everything = client.get("/logs/svc-b-1")
    assert everything.status_code == 200 and "a plain text line" in everything.text
    errors = client.get("/logs/svc-b-1?level=ERROR")
    assert "payment declined" in errors.text and "serving svc-b" not in errors.text
    text = client.get("/logs/svc-b-1?q=SERVING")
    assert "serving svc-b" in text.text and "payment declined" not in text.text
    traced = client.get(f"/logs/svc-b-1?trace={TRACE}")
    assert f"order {ORDER} placed" in traced.text and "payment declined" not in traced.text
    assert f'href="/traces/{TRACE}"' in traced.text  # a line's trace id links to its trace


def test_one_trace_lines_across_programs(client: TestClient) -> None:
    page = client.get(f"/logs?trace={TRACE}")
    assert page.status_code == 200 and f"order {ORDER} placed" in page.text


def test_the_live_tail_reads_the_lines_written_since_the_page(settings: ConsoleSettings) -> None:
    log = settings.state_dir / "supervisor" / "logs" / "svc-b-1.log"
    offset = log.stat().st_size
    with log.open("a") as fh:
        fh.write(json.dumps({"level": "WARNING", "message": "a new line", "trace_id": None}) + "\n")
        fh.write('{"level": "INFO", "message": "half a li')  # not finished yet: not sent
    lines, position = read_from(log, offset, LogFilter())
    assert [line.message for line in lines] == ["a new line"]
    assert read_from(log, position, LogFilter.parse("WARNING", None, None))[0] == []
    log.write_text("rotated\n")  # a shorter file is read from its start
    assert [line.message for line in read_from(log, position, LogFilter())[0]] == ["rotated"]


def test_traces_list_the_recent_requests_and_orders(client: TestClient) -> None:
    page = client.get("/traces")
    assert page.status_code == 200 and f'data-trace="{TRACE}"' in page.text
    orders = client.get("/traces?orders=true")
    assert ORDER in orders.text


def test_an_order_id_finds_its_trace(client: TestClient) -> None:
    found = client.get(f"/traces?find={ORDER}", follow_redirects=False)
    assert found.status_code in (302, 303) and found.headers["location"] == f"/traces/{TRACE}"


def test_a_trace_renders_as_a_waterfall(client: TestClient) -> None:
    page = client.get(f"/traces/{TRACE}")
    assert page.status_code == 200
    spans = re.findall(r'data-span="(\w+)"', page.text)
    assert spans == ["g1", "b1", "b2"]  # depth first from the root
    bars = re.findall(r"left: ([\d.]+)%; width: ([\d.]+)%", page.text)
    assert bars[0] == ("0.00", "100.00") and bars[1] == ("10.00", "80.00")
    assert f"/reservations/{ORDER}/commit" in page.text  # span attributes


def test_metrics_say_when_prometheus_is_down(client: TestClient) -> None:
    page = client.get("/metrics")
    assert page.status_code == 200 and 'id="prometheus-down"' in page.text


def test_alerts_say_when_nothing_was_received_and_alertmanager_is_down(client: TestClient) -> None:
    alerts = client.get("/alerts")
    assert alerts.status_code == 200
    assert 'id="nothing-received"' in alerts.text and "invoke stage 15" in alerts.text
    assert 'id="alertmanager-down"' in alerts.text and "stage (2) has not run" in alerts.text


def test_received_alerts_show_firing_and_resolved_with_their_runbooks(
    client: TestClient, settings: ConsoleSettings
) -> None:
    """The receiver's log, written by the receiver's own writer: the latest notification of each
    alert wins; the runbook is the console's page of observability/runbooks/<alert>.md."""
    down = {
        "status": "firing",
        "fingerprint": "f1",
        "startsAt": "2026-12-07T10:00:00Z",
        "labels": {"alertname": "InstanceDown", "severity": "critical", "program": "svc-a-1"},
        "annotations": {
            "summary": "svc-a-1 (svc-a) is down",
            "runbook_url": "observability/runbooks/InstanceDown.md",
        },
    }
    errors = {
        "status": "firing",
        "fingerprint": "f2",
        "startsAt": "2026-12-07T10:00:00Z",
        "labels": {"alertname": "HighErrorRatio", "severity": "warning", "route": "svc-b"},
        "annotations": {"summary": "5xx"},
    }
    elsewhere = {
        **errors,
        "fingerprint": "f3",
        "labels": {"alertname": "NotInThisRepo", "severity": "warning"},
        "annotations": {"runbook_url": "https://runbooks.example/NotInThisRepo"},
    }
    nowhere = {
        **elsewhere,
        "fingerprint": "f4",
        "labels": {"alertname": "NoRunbook", "severity": "warning"},
        "annotations": {"runbook_url": "observability/runbooks/NoRunbook.md"},
    }
    alert_log.append_alerts(settings.state_dir, "critical", [down], received_at=1_796_637_600.0)
    warnings = [errors, elsewhere, nowhere]
    alert_log.append_alerts(settings.state_dir, "warning", warnings, received_at=1_796_637_601.0)
    resolved = {**errors, "status": "resolved", "endsAt": "2026-12-07T10:05:00Z"}
    alert_log.append_alerts(settings.state_dir, "warning", [resolved], received_at=1_796_637_900.0)
    page = client.get("/alerts")
    assert page.status_code == 200 and 'id="nothing-received"' not in page.text
    received = page.text[page.text.index('id="received"') : page.text.index("Held by Alertmanager")]
    rows = dict(re.findall(r'<tr data-alert="(\w+)" class="(\w+)">', received))
    assert rows == {
        "InstanceDown": "firing",
        "HighErrorRatio": "resolved",
        "NotInThisRepo": "firing",
        "NoRunbook": "firing",
    }
    assert received.index("InstanceDown") < received.index("HighErrorRatio")  # firing ones first
    down_row = received[received.index('data-alert="InstanceDown"') :].split("</tr>")[0]
    assert "program=svc-a-1" in down_row and "svc-a-1 (svc-a) is down" in down_row
    assert 'href="/alerts/runbooks/InstanceDown"' in down_row and "2026-12-07 10:00:00" in down_row
    resolved_row = received[received.index('data-alert="HighErrorRatio"') :].split("</tr>")[0]
    assert "2026-12-07 10:05:00" in resolved_row and 'href="/alerts/runbooks/HighErrorRatio"' in resolved_row
    assert 'href="https://runbooks.example/NotInThisRepo"' in received
    no_row = received[received.index('data-alert="NoRunbook"') :].split("</tr>")[0]
    assert '<span class="bad">none</span>' in no_row and "href=" not in no_row
    runbook = client.get("/alerts/runbooks/InstanceDown")
    assert runbook.status_code == 200 and "## Mitigate" in runbook.text


def test_a_torn_line_in_the_receivers_log_is_skipped(client: TestClient, settings: ConsoleSettings) -> None:
    path = alert_log.log_path(settings.state_dir)
    path.parent.mkdir(parents=True)
    line = {"received_at": 1, "labels": {"alertname": "InstanceDown"}, "status": "firing"}
    path.write_text(json.dumps(line) + '\n{"torn\n')
    page = client.get("/alerts")
    assert page.status_code == 200 and 'data-alert="InstanceDown" class="firing"' in page.text


def test_deployments_show_stage_14s_gates_and_the_environments_with_nomad_links(
    client: TestClient, settings: ConsoleSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with StateStore(settings.state_dir).updating(14) as record:
        record.status = "failed"
        record.gates["nomad"] = GateRecord(
            "Nomad jobs valid incl. scaling",
            False,
            "svc-a: no scaling block",
            "2026-12-07T11:00:00+00:00",
            0.3,
            fix="invoke render",
        )
    monkeypatch.setenv("NOMAD_ADDR", "http://127.0.0.1:4646/")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{settings.state_dir}/no-such-docker.sock")
    page = client.get("/deployments")
    assert page.status_code == 200
    gate = page.text[page.text.index('<tr data-gate="nomad">') :].split("</tr>")[0]
    assert "failed" in gate and "svc-a: no scaling block" in gate and "invoke render" in gate
    assert '<tr data-gate="images">' in page.text and "not run" in page.text
    assert 'id="docker-down"' in page.text and "Docker is not reachable" in page.text
    assert 'href="http://127.0.0.1:4646/ui/jobs"' in page.text
    deployment = load_deployment(settings.root)
    for name in environment_names(settings.root):
        env = load_environment(settings.root, name)
        table = page.text[page.text.index(f'data-env="{name}"') :].split("</table>")[0]
        for d in deployment.deployables.values():
            row = table[table.index(f'<tr data-deployable="{d.name}">') :].split("</tr>")[0]
            assert f'href="http://127.0.0.1:4646/ui/jobs/{d.name}"' in row
            assert d.image(env) in row and f"<td>{d.count(env)}</td>" in row


def test_deployments_without_nomad_have_no_cluster_links(
    client: TestClient, settings: ConsoleSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOMAD_ADDR", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{settings.state_dir}/no-such-docker.sock")
    page = client.get("/deployments")
    assert page.status_code == 200 and "/ui/jobs" not in page.text
    assert "Set <code>NOMAD_ADDR</code>" in page.text


def test_a_run_streams_its_output_then_its_outcome(client: TestClient) -> None:
    console: Console = client.app.state.console
    run = StageRun(
        "r1", 1, "deps", ["python", "-m", "invoke", "stage", "1"], lines=["▶ stage 1 — Foundation", "<b>"]
    )
    run.returncode = 0
    console.runs._runs[run.id] = run
    with client.stream("GET", "/plan/runs/r1/events") as stream:
        body = "".join(stream.iter_text())
    assert "event: line" in body and "&lt;b&gt;" in body  # output is escaped
    assert "event: done" in body and "passed" in body and "event: close" in body


def test_the_shipped_front_end_files_match_their_record() -> None:
    import hashlib

    import caravan_workspace.console_web as package

    vendor = Path(package.__file__).parent / "static" / "vendor"
    rows = [
        line.split("|")
        for line in (vendor / "VENDOR.md").read_text().splitlines()
        if line.startswith("| ") and ".js" in line
    ]
    assert len(rows) == 2
    for row in rows:
        name, digest = row[1].strip(), row[6].strip()
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest
        assert (vendor / row[4].split("(")[1].rstrip(") ")).is_file()  # its licence file
