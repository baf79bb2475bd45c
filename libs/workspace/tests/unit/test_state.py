"""The state file: atomic writes, corruption is reported and never overwritten, JUnit reports."""

import json
import xml.etree.ElementTree as ET

import pytest

from caravan_workspace.state import GateRecord, StageRecord, StateError, StateStore, junit_xml, reset_state


def gate(ok, detail="d"):
    return GateRecord(title="a gate", ok=ok, detail=detail, at="2026-01-01T00:00:00+00:00", duration_s=0.1)


def test_records_survive_a_reload(tmp_path):
    store = StateStore(tmp_path)
    store.record_gate(3, "wheel", gate(True))
    with store.updating(3) as rec:
        rec.status = "passed"
    again = StateStore(tmp_path)
    assert again.stage(3).status == "passed"
    assert again.stage(3).gates["wheel"].ok is True
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".state.json.")], (
        "temporary files left over"
    )


@pytest.mark.parametrize(
    "content", ["{not json", "[]", '{"version": 99}', '{"version": 1, "stages": {"x": {}}}', "\xff"]
)
def test_a_corrupt_state_file_is_reported_in_one_line_and_left_alone(tmp_path, content):
    path = tmp_path / "state.json"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(StateError) as caught:
        StateStore(tmp_path)
    assert "\n" not in str(caught.value)
    assert "invoke reset" in str(caught.value)
    assert path.read_bytes() == content.encode("latin-1")


def test_reset_sets_the_state_aside(tmp_path):
    (tmp_path / "state.json").write_text("{broken")
    moved = reset_state(tmp_path)
    assert moved is not None and moved.read_text() == "{broken"
    assert not (tmp_path / "state.json").exists()
    assert StateStore(tmp_path).stages() == {}
    assert reset_state(tmp_path) is None


def test_junit_report_has_a_case_per_gate_and_a_failure_per_failed_gate():
    record = StageRecord(status="failed", gates={"a": gate(True), "b": gate(False, "boom")})
    blocked = StageRecord(status="blocked", reason="stage 1 did not pass")
    root = ET.fromstring(junit_xml("r1", {1: ("One", record), 2: ("Two", blocked)}))
    assert root.get("tests") == "3"
    assert root.get("failures") == "1"
    failure = root.find(".//testcase[@name='b: a gate']/failure")
    assert failure is not None and failure.get("message") == "boom"
    assert root.find(".//testsuite[@name='stage 2: Two']/testcase/skipped") is not None


def test_state_file_is_json_with_a_version(tmp_path):
    store = StateStore(tmp_path)
    store.add_run({"id": "x"})
    assert json.loads((tmp_path / "state.json").read_text())["version"] == 1
