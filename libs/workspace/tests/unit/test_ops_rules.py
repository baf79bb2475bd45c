"""The alert rules, their runbooks and the SLOs as committed: every alert complete and with its
runbook, every runbook of an alert and with commands that exist, the SLO rules current."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caravan_workspace.ops import alert_log, rules, runbooks, slo


@pytest.fixture
def copy(repo_root: Path, tmp_path: Path) -> Path:
    """The repository's observability folder, plan, tasks and packages' task modules, in a copy."""
    shutil.copytree(repo_root / "observability", tmp_path / "observability")
    shutil.copy(repo_root / "tasks.py", tmp_path / "tasks.py")
    return tmp_path


def test_every_alert_is_complete_and_has_a_runbook_whose_commands_exist(repo_root):
    assert rules.problems(repo_root) == []
    assert runbooks.check(repo_root) == []
    assert len(rules.alerts(repo_root)) >= 13


def test_the_issue_s_alerts_are_all_there(repo_root):
    assert set(rules.alerts(repo_root)) >= {
        "InstanceDown", "ReadinessFailing", "HighErrorRatio", "HighLatencyP99", "OrdersNotTerminal",
        "SagaCompensationsUpstreamUnavailable", "CircuitOpen", "LedgerNotBalanced",
        "ReservationsPastTTL", "PackageIndexDown", "ScrapeFailures",
        "OrderPlacementAvailabilityBurn", "OrderPlacementLatencyBurn",
    }  # fmt: skip


def test_an_alert_without_a_runbook_fails(copy):
    (copy / "observability" / "runbooks" / "CircuitOpen.md").unlink()
    assert runbooks.check(copy) == [
        "alert CircuitOpen has no runbook (observability/runbooks/CircuitOpen.md)"
    ]


def test_a_runbook_of_no_alert_fails(copy):
    book = copy / "observability" / "runbooks"
    shutil.copy(book / "CircuitOpen.md", book / "CircuitClosed.md")
    assert runbooks.check(copy) == ["runbook observability/runbooks/CircuitClosed.md belongs to no alert"]


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("invoke restartt svc-a-1", "no invoke task 'restartt'"),
        ("invoke logs svc-a-1 --tail 5", "invoke logs has no flag --tail"),
        ("invoke alerts --firing", "invoke alerts has no flag --firing"),
        ("invoke stage 9 -x", "invoke stage has no flag -x"),
    ],
)
def test_a_runbook_naming_a_task_or_flag_that_does_not_exist_fails(copy, command, problem):
    path = copy / "observability" / "runbooks" / "CircuitOpen.md"
    path.write_text(path.read_text() + f"\n```sh\n{command}   # try this\n```\n")
    found = runbooks.check(copy)
    assert len(found) == 1 and problem in found[0] and found[0].startswith("CircuitOpen.md:")


def test_commands_that_exist_pass_in_spans_and_blocks(copy):
    path = copy / "observability" / "runbooks" / "CircuitOpen.md"
    extra = (
        "\nRun `invoke logs svc-b-1 -f` or `invoke alerts --all --format json`.\n"
        "```sh\ninvoke stage 9 --gates-only\n```\n"
    )
    path.write_text(path.read_text() + extra)
    assert runbooks.check(copy) == []


def test_a_runbook_missing_a_section_fails(copy):
    path = copy / "observability" / "runbooks" / "LedgerNotBalanced.md"
    path.write_text(path.read_text().replace("## Escalate", "## Who to call"))
    assert runbooks.check(copy) == ["LedgerNotBalanced.md: no '## Escalate' section"]


def test_an_alert_without_severity_or_runbook_link_is_reported(copy):
    path = copy / "observability" / "rules" / "alerts.yml"
    text = path.read_text().replace(
        'severity: warning\n        annotations:\n          summary: "The workspace',
        'annotations:\n          summary: "The workspace',
        1,
    )
    text = text.replace(
        "runbook_url: observability/runbooks/CircuitOpen.md", "runbook_url: https://wiki/circuit"
    )
    path.write_text(text)
    found = rules.problems(copy)
    assert any(p.startswith("PackageIndexDown") and "severity" in p for p in found)
    assert any(p.startswith("CircuitOpen") and "runbook_url must be" in p for p in found)


def test_the_slo_rules_file_is_generated_from_the_objectives(repo_root):
    expected = slo.render(slo.load(repo_root))
    assert (repo_root / slo.RULES_FILE).read_text() == expected, (
        "observability/rules/slo.yml is stale: python -m caravan_workspace.ops.slo --write"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("objective = 0.995", "objective = 1.5"), "objective must be between 0 and 1"),
        (('kind = "latency"', 'kind = "speed"'), "kind must be availability or latency"),
        (("threshold_s = 0.5\n", ""), "threshold_s is required for latency"),
        (('period = "30d"', 'period = "30d"\nwindow = 3'), "unexpected keyword argument 'window'"),
        (
            ('alert = "OrderPlacementLatencyBurn"', 'alert = "OrderPlacementAvailabilityBurn"'),
            "must be unique",
        ),
    ],
)
def test_invalid_objectives_are_refused_in_one_line(copy, change, message):
    path = copy / slo.SLOS_FILE
    path.write_text(path.read_text().replace(*change, 1))
    with pytest.raises(slo.SloError, match=message):
        slo.load(copy)


def test_the_slo_command_writes_nothing_on_bad_input(copy, capsys):
    path = copy / slo.SLOS_FILE
    path.write_text("[[slo]]\nname = 'x'\n")
    before = (copy / slo.RULES_FILE).read_text()
    assert slo.main(["--root", str(copy), "--write"]) == 2
    assert capsys.readouterr().err.startswith("error: observability/slos.toml: slo #1")
    assert (copy / slo.RULES_FILE).read_text() == before


@pytest.mark.parametrize(
    ("expr", "series"),
    [
        ('sum by (job, service) (rate(http_requests_total{status=~"5.."}[5m]))', {"http_requests_total"}),
        ("up == 0", {"up"}),
        ('label_replace(x_ready == 0, "service", "$1", "discovered_service", "(.*)")', {"x_ready"}),
        ("a:b:rate5m > 0.5 and on (service) c_total offset 5m", {"a:b:rate5m", "c_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(d_bucket[5m]))) > 1", {"d_bucket"}),
    ],
)
def test_series_in_an_expression(expr, series):
    assert rules.series_in(expr) == series


def test_the_rules_read_the_services_metrics(repo_root):
    needed = rules.raw_series(repo_root)
    assert {
        "up",
        "http_requests_total",
        "orders_not_terminal_oldest_age_seconds",
        "ledger_balanced",
    } <= needed
    assert not any(":" in name for name in needed)  # recorded series are resolved to what they read


def test_the_alert_log_folds_notifications_into_one_state_per_alert(tmp_path):
    labels = {"alertname": "InstanceDown", "program": "svc-a-1", "severity": "critical"}
    annotations = {"summary": "down", "runbook_url": "observability/runbooks/InstanceDown.md"}
    firing = {"status": "firing", "fingerprint": "f1", "labels": labels, "annotations": annotations}
    other = {
        "status": "firing",
        "fingerprint": "f2",
        "labels": {"alertname": "CircuitOpen", "severity": "warning"},
    }
    alert_log.append_alerts(tmp_path, "critical", [firing], received_at=100.0)
    alert_log.append_alerts(tmp_path, "warning", [other], received_at=101.0)
    alert_log.append_alerts(tmp_path, "critical", [{**firing, "status": "resolved"}], received_at=110.0)
    with alert_log.log_path(tmp_path).open("a") as log:
        log.write("{torn line\n")
    states = alert_log.summarise(alert_log.read_log(tmp_path))
    assert [(s.name, s.status) for s in states] == [("CircuitOpen", "firing"), ("InstanceDown", "resolved")]
    down = states[1]
    assert (down.first_received, down.last_received, down.route) == (100.0, 110.0, "critical")
    assert down.subject == "program=svc-a-1"
    assert down.runbook == "observability/runbooks/InstanceDown.md"
    assert oct(alert_log.log_path(tmp_path).stat().st_mode & 0o777) == "0o600"
