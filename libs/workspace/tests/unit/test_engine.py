"""The engine on random plans (Hypothesis) and on the real plan with stand-in probes.

Ordering and concurrency are read from the scheduler's recorded events, never from timings.
"""

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from caravan_workspace.engine import NOT_IMPLEMENTED, Engine
from caravan_workspace.plan import Action, Gate, Lane, Plan, PlanError, Stage, load_plan
from caravan_workspace.registry import ActionResult, GateFailure


@st.composite
def dags(draw):
    """A random valid plan: stage i depends on a subset of the stages before it; some gates fail."""
    n = draw(st.integers(min_value=1, max_value=9))
    stages, failing = [], set()
    for i in range(1, n + 1):
        deps = draw(st.sets(st.integers(min_value=1, max_value=i - 1), max_size=3)) if i > 1 else set()
        if draw(st.booleans()) and draw(st.booleans()):
            failing.add(i)
        stages.append(
            Stage(
                number=i,
                name=f"s{i}",
                lane=draw(st.sampled_from(["x", "y", "z"])),
                depends_on=tuple(sorted(deps)),
                gates=(Gate(id="g", title="g", check="fail" if i in failing else "pass"),),
            )
        )
    # shuffle numbering so that dependencies do not always point at lower numbers
    perm = draw(st.permutations(range(1, n + 1)))
    renumber = dict(zip(range(1, n + 1), perm, strict=True))
    stages = [
        Stage(renumber[s.number], s.name, s.lane, tuple(renumber[d] for d in s.depends_on), s.gates)
        for s in stages
    ]
    lanes = [Lane("x", "X"), Lane("y", "Y"), Lane("z", "Z")]
    return Plan.build(stages, lanes), {renumber[i] for i in failing}


def probes():
    def failing(ctx):
        raise GateFailure("failed on purpose", fix="nothing")

    return {"pass": lambda ctx: "fine", "fail": failing}


def run_all(plan, tmp_path):
    engine = Engine(
        plan,
        root=tmp_path,
        state_dir=tmp_path / "state",
        gates=probes(),
        actions={},
        max_workers=len(plan.stages),
    )
    return engine.run(list(plan.stages), with_deps=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dags())
def test_random_plans_respect_dependencies_run_each_stage_once_and_dispatch_greedily(tmp_path, case):
    plan, failing = case
    result = run_all(plan, tmp_path)
    events = [e for e in result.events if e.kind != "begin"]  # begin is recorded by workers, unordered
    dispatched = [e.stage for e in events if e.kind == "dispatch"]
    assert len(dispatched) == len(set(dispatched)), "a stage ran twice"

    # expected outcome: a stage passes iff it and all its ancestors pass their gates
    for n in plan.stages:
        bad = ({n} | plan.ancestors([n])) & failing
        assert (result.records[n].status == "passed") == (not bad)
        if n not in failing and bad:
            assert result.records[n].status == "blocked"
            assert n not in dispatched

    ended_ok: set[int] = set()
    ended_bad: set[int] = set()
    started: set[int] = set()
    for event in events:
        if event.kind == "dispatch":
            deps = plan.stages[event.stage].depends_on
            assert all(d in ended_ok for d in deps), f"stage {event.stage} dispatched before its dependencies"
            started.add(event.stage)
        elif event.kind == "blocked":
            assert any(d in ended_bad for d in plan.stages[event.stage].depends_on)
            ended_bad.add(event.stage)
            started.add(event.stage)
        elif event.kind == "end":
            (ended_ok if event.ok else ended_bad).add(event.stage)
        elif event.kind == "wait":
            # Whenever the scheduler waits, every stage whose dependencies are done has been started:
            # independent lanes are never serialised behind each other.
            ready = {
                n
                for n, s in plan.stages.items()
                if n not in started and all(d in ended_ok for d in s.depends_on)
            }
            assert not ready, f"stages {ready} were ready but left waiting"
    assert started == set(plan.stages)


@settings(max_examples=40, deadline=None)
@given(dags(), st.data())
def test_a_back_edge_makes_any_plan_invalid(case, data):
    plan, _ = case
    chain = plan.topological_order()
    stages = list(plan.stages.values())
    target = data.draw(st.sampled_from(stages))
    ancestors = plan.ancestors([target.number])
    source = data.draw(st.sampled_from(sorted(ancestors | {target.number})))
    # make `source` depend on `target`, which (transitively) depends on `source`: a cycle
    rebuilt = [
        Stage(
            s.number,
            s.name,
            s.lane,
            (*s.depends_on, target.number) if s.number == source else s.depends_on,
            s.gates,
        )
        for s in stages
    ]
    with pytest.raises(PlanError):
        Plan.build(rebuilt, plan.lanes)
    assert chain  # the original plan was valid


@pytest.fixture
def real_plan(repo_root):
    return load_plan(repo_root / "plan.toml")


def stand_in_probes(plan, fail=()):
    """Every check key of the real plan answered by a stand-in (the real probes are tested elsewhere)."""

    def make(check):
        def probe(ctx, **args):
            if check in fail:
                raise GateFailure(f"{check} is down", fix="invoke stage 2")
            return "ok"

        return probe

    return {g.check: make(g.check) for s in plan.stages.values() for g in s.gates}


def stand_in_actions(plan):
    return {
        a.run: (lambda ctx, **_: ActionResult(changed=False)) for s in plan.stages.values() for a in s.actions
    }


def test_lanes_a_b_and_c_run_concurrently(real_plan, tmp_path):
    barrier = threading.Barrier(3, timeout=20)

    def meet(ctx, **_):
        barrier.wait()  # breaks (and the stage fails) unless all three lanes are in flight together
        return ActionResult(changed=True, detail="met")

    lane_starts = {4, 7, 10}
    plan = Plan.build(
        [
            Stage(
                s.number,
                s.name,
                s.lane,
                s.depends_on,
                s.gates,
                (Action("meet", "meet the other lanes", "meet"),) if s.number in lane_starts else (),
            )
            for s in real_plan.stages.values()
        ],
        real_plan.lanes,
    )
    engine = Engine(
        plan, root=tmp_path, state_dir=tmp_path / "state", gates=stand_in_probes(plan), actions={"meet": meet}
    )
    result = engine.run(list(plan.stages), with_deps=True)
    assert result.ok, {n: r.reason for n, r in result.records.items() if r.status != "passed"}
    order = [(e.kind, e.stage) for e in result.events if e.kind in ("dispatch", "end")]
    first_end = min(order.index(("end", n)) for n in lane_starts)
    assert all(order.index(("dispatch", n)) < first_end for n in lane_starts)


def test_a_stage_is_refused_while_a_dependency_gate_fails(real_plan, tmp_path):
    engine = Engine(
        real_plan,
        root=tmp_path,
        state_dir=tmp_path / "state",
        gates=stand_in_probes(real_plan, fail={"shared.gateway"}),
        actions={},
    )
    result = engine.run([4])
    assert not result.ok
    assert [r.dep for r in result.refusals] == [2]
    message = result.refusals[0].message("invoke stage 4 --with-deps")
    assert "stage 2 (Shared infrastructure)" in message
    assert "'API gateway routing works'" in message
    assert "shared.gateway is down" in message
    assert "invoke stage 4 --with-deps" in message
    assert result.records[4].status == "refused"
    assert not [e for e in result.events if e.kind == "dispatch"], "a refused stage must not run"


def test_with_deps_runs_the_dependencies_first(real_plan, tmp_path):
    engine = Engine(
        real_plan,
        root=tmp_path,
        state_dir=tmp_path / "state",
        gates=stand_in_probes(real_plan),
        actions=stand_in_actions(real_plan),
    )
    result = engine.run([5], with_deps=True)
    assert result.ok
    dispatched = [e.stage for e in result.events if e.kind == "dispatch"]
    assert dispatched == [1, 2, 3, 4, 5]


def test_an_unregistered_probe_fails_as_not_implemented(real_plan, tmp_path):
    engine = Engine(real_plan, root=tmp_path, state_dir=tmp_path / "state", gates={}, actions={})
    result = engine.run([1])
    assert result.records[1].status == "failed"
    assert {g.detail for g in result.records[1].gates.values()} == {NOT_IMPLEMENTED}


def test_actions_are_reported_and_a_failed_action_fails_the_stage(real_plan, tmp_path):
    calls = []

    def idempotent(ctx, **_):
        calls.append(1)
        return ActionResult(changed=len(calls) == 1, detail="made" if len(calls) == 1 else "already there")

    gates = stand_in_probes(real_plan)
    engine = Engine(
        real_plan,
        root=tmp_path,
        state_dir=tmp_path / "state",
        gates=gates,
        actions={"workspace.state": idempotent},
    )
    first = engine.run([1])
    second = engine.run([1])
    assert first.records[1].actions["state"].changed is True
    assert second.records[1].actions["state"].changed is False

    def broken(ctx, **_):
        raise RuntimeError("disk full\nwith a traceback-ish second line")

    engine = Engine(
        real_plan,
        root=tmp_path,
        state_dir=tmp_path / "state",
        gates=gates,
        actions={"workspace.state": broken},
    )
    failed = engine.run([1])
    assert failed.records[1].status == "failed"
    assert failed.records[1].actions["state"].detail == "RuntimeError: disk full"
    assert failed.junit_path is not None and failed.junit_path.exists()
