"""plan.toml: the real plan's shape, validation of broken plans, and stage selectors."""

import tomllib

import pytest

from caravan_workspace.plan import PlanError, SelectionError, load_plan, parse_plan


@pytest.fixture
def plan(repo_root):
    return load_plan(repo_root / "plan.toml")


def test_the_plan_has_the_fifteen_stages_with_the_designed_dependencies(plan):
    deps = {n: set(s.depends_on) for n, s in plan.stages.items()}
    assert list(plan.stages) == list(range(1, 16))
    assert deps[1] == set()
    assert deps[2] == {1}
    assert deps[3] == {2}
    for first in (4, 7, 10):  # Domain → Infrastructure → API inside each service lane
        assert deps[first] == {2, 3}
        assert deps[first + 1] == {2, 3, first}
        extra = {6, 12} if first == 7 else set()  # the Orders API gate orders across svc-a and svc-c
        assert deps[first + 2] == {2, 3, first + 1} | extra
    assert deps[13] == set(range(4, 13))
    assert deps[14] == {13}
    assert deps[15] == set(range(1, 15))


def test_lanes_and_critical_path(plan):
    assert [(lane.name, plan.lane_stages(lane.id)) for lane in plan.lanes] == [
        ("Foundation", [1, 2, 3]),
        ("A", [4, 5, 6]),
        ("B", [7, 8, 9]),
        ("C", [10, 11, 12]),
        ("All", [13, 14, 15]),
    ]
    assert plan.critical_path() == [1, 2, 3, 4, 5, 6, 9, 13, 14, 15]
    # measured durations move the critical path to the slowest lane
    weights = dict.fromkeys(plan.stages, 1.0) | {8: 50.0}
    assert plan.critical_path(weights) == [1, 2, 3, 7, 8, 9, 13, 14, 15]


def test_every_stage_has_gates_and_the_gate_keys_are_known(plan):
    for stage in plan.stages.values():
        assert stage.gates, stage.number
        assert all(g.check for g in stage.gates)


def base_plan():
    return {
        "lane": [{"id": "x", "name": "X"}],
        "stage": [
            {
                "number": 1,
                "name": "one",
                "lane": "x",
                "depends_on": [],
                "gate": [{"id": "g", "title": "t", "check": "c"}],
            },
            {
                "number": 2,
                "name": "two",
                "lane": "x",
                "depends_on": [1],
                "gate": [{"id": "g", "title": "t", "check": "c"}],
            },
        ],
    }


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p["stage"][1].update(depends_on=[7]), "stage 2 depends on unknown stage 7"),
        (lambda p: p["stage"][0].update(depends_on=[2]), "dependency cycle: "),
        (lambda p: p["stage"][1].update(number=1), "duplicate stage number 1"),
        (lambda p: p["stage"][1].update(lane="nowhere"), "unknown lane 'nowhere'"),
        (lambda p: p["stage"][1].update(depends_on=[2]), "stage 2 depends on itself"),
        (lambda p: p["stage"][1].update(colour="red"), "unknown key 'colour'"),
        (lambda p: p["stage"][1].update(gate=[]), "has no gates"),
        (lambda p: p["stage"][1]["gate"][0].pop("check"), "missing key 'check'"),
        (lambda p: p["stage"][1].update(number="2"), "'number' has the wrong type"),
        (lambda p: p.update(stage=[]), "no stages"),
    ],
)
def test_invalid_plans_are_rejected_with_a_clear_message(mutate, message):
    raw = base_plan()
    mutate(raw)
    with pytest.raises(PlanError, match=message.replace("(", r"\(")):
        parse_plan(raw)


def test_a_plan_file_that_is_not_toml_is_rejected(tmp_path):
    path = tmp_path / "plan.toml"
    path.write_text("[[stage]\nnumber = ")
    with pytest.raises(PlanError, match="not valid TOML"):
        load_plan(path)


def test_the_real_plan_file_is_plain_toml(repo_root):
    assert tomllib.loads((repo_root / "plan.toml").read_text())["stage"]


@pytest.mark.parametrize(
    ("selector", "stages"),
    [
        ("4", [4]),
        ("4-6", [4, 5, 6]),
        (" 10 - 12 ", [10, 11, 12]),
        ("a", [4, 5, 6]),
        ("B", [7, 8, 9]),
        ("foundation", [1, 2, 3]),
        ("all", [13, 14, 15]),
        ("1-15", [1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 9, 13, 14, 15]),  # in dependency order
    ],
)
def test_selectors(plan, selector, stages):
    assert plan.select(selector) == stages


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("16", "stage 16 does not exist"),
        ("0", "stage 0 does not exist"),
        ("x", "'x' is not a stage"),
        ("6-4", "runs backwards"),
        ("3-99", "stage 99 does not exist"),
        ("", "no stage given"),
        ("-1", "is not a stage"),
    ],
)
def test_bad_selectors(plan, selector, message):
    with pytest.raises(SelectionError, match=message):
        plan.select(selector)


def test_the_graph_labels_break_lines_and_colour_by_status(plan):
    from caravan_workspace.graph import FILL, to_dot
    from caravan_workspace.state import StageRecord

    dot = to_dot(plan, {1: StageRecord(status="passed"), 2: StageRecord(status="failed")})
    assert 's1 [label="1. Foundation\\npassed", fillcolor="' + FILL["passed"] + '"];' in dot
    assert 's2 [label="2. Shared infrastructure\\nfailed"' in dot
    assert "\\\\n" not in dot  # a line break, not a literal backslash-n
    assert "s1 -> s2;" in dot and "s2 -> s4;" not in dot  # edges implied by others are left out
