"""Gate results cached by their inputs: a cached gate re-runs when any input changes (source,
test, dependency, commons version, database kind) and not otherwise; --fresh re-runs it; a
failure is never cached; a corrupt entry is discarded, never trusted; a probing gate always runs.

The gate under test is a stand-in that counts its runs; its inputs are the real inputs of the
service gates (``project_inputs``) over a small service project and virtualenv layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caravan_workspace.engine import Engine
from caravan_workspace.gate_cache import GateCache
from caravan_workspace.plan import Gate, Lane, Plan, Stage
from caravan_workspace.registry import GateFailure
from caravan_workspace.stages.services import project_inputs

TESTS = "tests/unit/domain"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.service = root / "svc-x"
        self.python = root / "venv" / "bin" / "python"
        self.commons_version = "0.2.0"
        self.runs = {"suite": 0, "probe": 0}
        self.failing = False
        for path, text in {
            "svc-x/pyproject.toml": '[project]\nname = "svc-x"\n',
            "svc-x/src/svc_x/domain/model.py": "X = 1\n",
            f"svc-x/{TESTS}/test_model.py": "def test_x(): pass\n",
            "svc-x/tests/conftest.py": "",
            "svc-x/tests/gateway/test_api.py": "def test_api(): pass\n",
        }.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        self.python.parent.mkdir(parents=True)
        self.add_dist("litestar-2.15.0")
        plan = Plan.build(
            [
                Stage(
                    1,
                    "x",
                    "x",
                    (),
                    gates=(
                        Gate(id="tests", title="tests pass", check="suite", args={"service": "svc-x"}),
                        Gate(id="live", title="answers", check="probe"),
                    ),
                )
            ],
            [Lane("x", "X")],
        )
        self.plan = plan

    def add_dist(self, name: str) -> None:
        site = self.root / "venv" / "lib" / "python3.11" / "site-packages"
        (site / f"{name}.dist-info").mkdir(parents=True)

    def engine(self, *, fresh: bool = False) -> Engine:
        def suite(ctx, service):
            self.runs["suite"] += 1
            if self.failing:
                raise GateFailure("1 failed")
            return "3 passed"

        def probe(ctx):
            self.runs["probe"] += 1
            return "answered"

        def inputs(ctx, service):
            return project_inputs(self.root / service, TESTS, self.python, self.commons_version)

        return Engine(
            self.plan,
            root=self.root,
            state_dir=self.root / "state",
            gates={"suite": suite, "probe": probe},
            gate_inputs={"suite": inputs},
            actions={},
            fresh=fresh,
        )

    def run(self, *, fresh: bool = False) -> dict[str, int]:
        before = dict(self.runs)
        result = self.engine(fresh=fresh).run([1])
        assert result.ok or self.failing
        self.last = result.records[1].gates
        return {k: self.runs[k] - before[k] for k in self.runs}


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.delenv("CARAVAN_TEST_POSTGRES_DSN", raising=False)
    return Workspace(tmp_path)


def test_an_unchanged_gate_is_reused_and_says_since_when(ws):
    assert ws.run() == {"suite": 1, "probe": 1}
    first = ws.last["tests"]
    assert first.cached_since is None and first.shown_detail == "3 passed"
    assert ws.run() == {"suite": 0, "probe": 1}  # the probing gate always probes
    reused = ws.last["tests"]
    assert reused.ok and reused.cached_since == first.at
    assert reused.shown_detail == f"passed (cached: inputs unchanged since {first.at}): 3 passed"


def _edit_source(ws):
    (ws.service / "src/svc_x/domain/model.py").write_text("X = 2\n")


def _add_source(ws):
    (ws.service / "src/svc_x/domain/events.py").write_text("E = 1\n")


def _edit_test(ws):
    (ws.service / TESTS / "test_model.py").write_text("def test_x(): assert True\n")


def _edit_conftest(ws):
    (ws.service / "tests/conftest.py").write_text("import os\n")


def _edit_project(ws):
    (ws.service / "pyproject.toml").write_text('[project]\nname = "svc-x"\nversion = "1"\n')


def _add_dependency(ws):
    ws.add_dist("msgspec-0.19.0")


def _bump_commons(ws):
    ws.commons_version = "0.3.0"


def _use_postgres(ws):
    import os

    os.environ["CARAVAN_TEST_POSTGRES_DSN"] = "postgresql://x@127.0.0.1/postgres"


@pytest.mark.parametrize(
    "change",
    [
        _edit_source,
        _add_source,
        _edit_test,
        _edit_conftest,
        _edit_project,
        _add_dependency,
        _bump_commons,
        _use_postgres,
    ],
)
def test_a_change_to_any_input_reruns_the_gate(ws, change, monkeypatch):
    monkeypatch.delenv("CARAVAN_TEST_POSTGRES_DSN", raising=False)  # restored after _use_postgres
    ws.run()
    assert ws.run()["suite"] == 0
    change(ws)
    assert ws.run()["suite"] == 1
    assert ws.last["tests"].cached_since is None
    assert ws.run()["suite"] == 0  # and the new pass is reused in turn


def test_files_the_gate_does_not_read_leave_it_cached(ws):
    ws.run()
    (ws.service / "tests/gateway/test_api.py").write_text("def test_api(): assert 1\n")
    (ws.service / "README.md").write_text("notes\n")
    cache = ws.service / "src/svc_x/domain/__pycache__"
    cache.mkdir()
    (cache / "model.cpython-311.pyc").write_bytes(b"\0")
    assert ws.run()["suite"] == 0


def test_fresh_reruns_every_gate(ws):
    ws.run()
    assert ws.run(fresh=True) == {"suite": 1, "probe": 1}
    assert ws.last["tests"].cached_since is None


def test_a_failure_is_never_cached_and_forgets_the_last_pass(ws):
    ws.run()
    ws.failing = True
    assert ws.run(fresh=True)["suite"] == 1
    assert not ws.last["tests"].ok
    ws.failing = False
    assert ws.run()["suite"] == 1  # the failure dropped the entry: it runs again


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda text: text[: len(text) // 2],
        lambda text: "\0\xff" + text,
        lambda text: text.replace("3 passed", "9 passed"),  # valid JSON, checksum no longer matches
        lambda text: json.dumps({**json.loads(text), "version": 99}),
        lambda text: "[]",
    ],
)
def test_a_corrupt_entry_is_discarded_and_the_gate_runs(ws, corrupt):
    ws.run()
    (entry,) = (ws.root / "state" / "cache" / "gates").glob("suite-*.json")
    entry.write_text(corrupt(entry.read_text()))
    assert ws.run()["suite"] == 1
    assert ws.last["tests"].detail == "3 passed"
    assert json.loads(entry.read_text())["detail"] == "3 passed"  # rewritten from the new pass


def test_the_cache_lives_in_the_state_folder(ws):
    ws.run()
    cache = GateCache(ws.root / "state")
    assert cache.folder == ws.root / "state" / "cache" / "gates"
    assert len(list(cache.folder.glob("*.json"))) == 1  # the probing gate has no entry
