"""The real `invoke` CLI in a subprocess, on the real plan, with a temporary state folder."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

INVOKE = Path(sys.executable).with_name("invoke")


def invoke(root: Path, *args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300):
    return subprocess.run(
        [str(INVOKE), *args],
        cwd=cwd or root,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def state(tmp_path, repo_root):
    folder = tmp_path / "state"
    yield folder
    invoke(repo_root, "down")  # stage 1 starts the supervisor and its programs: stop them all


def snapshot(folder: Path) -> dict:
    """The recorded results (state and reports); the runtime's own logs keep moving on their own."""
    files = [folder / "state.json", *(folder / "reports").glob("*")]
    return {p.relative_to(folder): p.read_bytes() for p in files if p.is_file()}


def test_list_shows_every_task_with_help(repo_root):
    done = invoke(repo_root, "--list")
    assert done.returncode == 0, done.stderr
    for name in ("plan", "stage", "up", "down", "status", "logs", "reset", "toolchain", "test"):
        assert f"\n  {name} " in done.stdout


def test_plan_as_json_shows_fifteen_honest_stages(repo_root, state):
    done = invoke(repo_root, "plan", "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert [s["number"] for s in data["stages"]] == list(range(1, 16))
    assert {s["status"] for s in data["stages"]} == {"not run"}
    assert data["critical_path"] == [1, 2, 3, 4, 5, 6, 9, 13, 14, 15]
    assert [lane["stages"] for lane in data["lanes"]] == [
        [1, 2, 3],
        [4, 5, 6],
        [7, 8, 9],
        [10, 11, 12],
        [13, 14, 15],
    ]


def test_plan_table_names_lanes_and_critical_path(repo_root):
    done = invoke(repo_root, "plan")
    assert done.returncode == 0, done.stderr
    assert "Foundation [1→2→3]" in done.stdout
    assert "Critical path: 1 → 2 → 3 → 4 → 5 → 6 → 9 → 13 → 14 → 15" in done.stdout


def test_stage_1_passes_and_records_state_and_junit(repo_root, state):
    done = invoke(repo_root, "stage", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ gate network plan valid and applied" in done.stdout
    assert "✓ gate security groups configured and enforced" in done.stdout
    assert (state / "reports" / "latest.xml").exists()
    recorded = json.loads((state / "state.json").read_text())
    assert recorded["stages"]["1"]["status"] == "passed"
    # a second run does no redundant work
    again = invoke(repo_root, "stage", "1")
    assert again.returncode == 0
    assert "up to date" in again.stdout
    plan = json.loads(invoke(repo_root, "plan", "--format", "json").stdout)
    assert plan["stages"][0]["status"] == "passed"
    assert all(g["ok"] and g["at"] for g in plan["stages"][0]["gates"])


def test_stage_4_is_refused_naming_stage_gate_reason_and_fix(repo_root, state):
    done = invoke(repo_root, "stage", "4")
    assert done.returncode == 1
    assert (
        "stage 4 refused: stage 2 (Shared infrastructure) gate 'service discovery works' failed"
        in done.stdout
    )
    assert "Fix: invoke stage 2, or invoke stage 4 --with-deps" in done.stdout
    recorded = json.loads((state / "state.json").read_text())
    assert recorded["stages"]["4"]["status"] == "refused"
    assert "actions" not in recorded["stages"]["4"] or not recorded["stages"]["4"]["actions"]


@pytest.mark.parametrize(
    ("selector", "message"),
    [("16", "stage 16 does not exist"), ("x", "'x' is not a stage"), ("6-4", "runs backwards")],
)
def test_bad_selectors_give_one_line_and_write_nothing(repo_root, state, selector, message):
    invoke(repo_root, "stage", "1")
    before = snapshot(state)
    done = invoke(repo_root, "stage", selector)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and message in done.stderr
    assert snapshot(state) == before


def test_a_corrupt_state_file_gives_one_line_and_is_not_overwritten(repo_root, state):
    state.mkdir(parents=True)
    (state / "state.json").write_text('{"version": 1, "stages": ')
    for args in (("plan",), ("stage", "1")):
        done = invoke(repo_root, *args)
        assert done.returncode == 2
        assert done.stderr.strip().count("\n") == 0 and "corrupt" in done.stderr
    assert (state / "state.json").read_text() == '{"version": 1, "stages": '
    assert invoke(repo_root, "reset").returncode == 0
    assert invoke(repo_root, "stage", "1").returncode == 0


def test_an_invalid_plan_file_gives_one_line_and_exit_2(repo_root, tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    shutil.copy(repo_root / "tasks.py", ws / "tasks.py")
    text = (repo_root / "plan.toml").read_text().replace("depends_on = [13]", "depends_on = [15]")
    (ws / "plan.toml").write_text(text)
    done = invoke(ws, "plan", cwd=ws)
    assert done.returncode == 2
    assert "dependency cycle" in done.stderr and done.stderr.strip().count("\n") == 0


def test_graph_renders_svg_and_png_or_names_the_install(repo_root, state, tmp_path):
    if shutil.which("dot"):
        done = invoke(repo_root, "plan", "--graph")
        assert done.returncode == 0, done.stderr
        svg, png = (state / "graph" / "plan.svg"), (state / "graph" / "plan.png")
        assert f"graph: {svg}" in done.stdout
        assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # without Graphviz on PATH the command says how to get it
    bare = tmp_path / "bin"
    bare.mkdir()
    done = invoke(repo_root, "plan", "--graph", env={"PATH": str(bare)})
    assert done.returncode == 1
    assert "apt-get install graphviz" in done.stderr


# `invoke up` itself (twice, with `invoke down` between): test_restarts.py


def test_status_without_a_running_supervisor(repo_root, state):
    done = invoke(repo_root, "status")
    assert done.returncode == 0, done.stderr
    assert "supervisor is not running" in done.stdout
    assert "Stages" in done.stdout


def test_alerts_lists_firing_then_resolved_with_their_runbooks(repo_root, state):
    done = invoke(repo_root, "alerts")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("No alert received yet")
    log = state / "monitoring" / "alerts" / "received.jsonl"
    log.parent.mkdir(parents=True)
    down = {"alertname": "InstanceDown", "severity": "critical", "program": "svc-c-1"}
    down_notes = {
        "summary": "svc-c-1 (svc-c) is down",
        "runbook_url": "observability/runbooks/InstanceDown.md",
    }
    circuit = {"alertname": "CircuitOpen", "severity": "warning", "upstream": "svc-c"}
    circuit_notes = {"summary": "circuit", "runbook_url": "observability/runbooks/CircuitOpen.md"}
    lines = [
        {"received_at": 1.0, "route": "critical", "status": "firing", "fingerprint": "a", "labels": down,
         "annotations": down_notes},
        {"received_at": 2.0, "route": "warning", "status": "firing", "fingerprint": "b", "labels": circuit,
         "annotations": circuit_notes},
        {"received_at": 3.0, "route": "critical", "status": "resolved", "fingerprint": "a", "labels": down,
         "annotations": down_notes},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    done = invoke(repo_root, "alerts", env={"COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    assert "1 firing, 1 resolved" in done.stdout
    firing, resolved = done.stdout.index("CircuitOpen"), done.stdout.index("InstanceDown")
    assert firing < resolved
    assert "observability/runbooks/InstanceDown.md" in done.stdout
    data = json.loads(invoke(repo_root, "alerts", "--format", "json").stdout)
    assert [(a["name"], a["status"]) for a in data] == [
        ("CircuitOpen", "firing"),
        ("InstanceDown", "resolved"),
    ]


def test_alerts_and_restart_refuse_bad_input_in_one_line(repo_root, state):
    done = invoke(repo_root, "alerts", "--format", "xml")
    assert (done.returncode, done.stderr.strip()) == (2, "error: unknown format 'xml': use table or json")
    done = invoke(repo_root, "restart", "svc-x-1")
    assert done.returncode == 1
    assert done.stderr.strip() == "error: the supervisor is not running (`invoke up` starts everything)"
