"""What the local runtime derives for a workspace: restarts after source changes, databases, ports."""

from pathlib import Path

from caravan_workspace.runtime.instances import source_digest


def test_the_digest_follows_the_source_and_ignores_bytecode(tmp_path: Path) -> None:
    module = tmp_path / "src" / "svc_x" / "api.py"
    module.parent.mkdir(parents=True)
    module.write_text("ANSWER = 1\n")
    before = source_digest(tmp_path)
    (module.parent / "__pycache__").mkdir()
    (module.parent / "__pycache__" / "api.cpython-311.pyc").write_bytes(b"\0" * 16)
    (tmp_path / "README.md").write_text("outside src")
    assert source_digest(tmp_path) == before
    module.write_text("ANSWER = 2\n")
    assert source_digest(tmp_path) != before


def test_each_service_gets_its_own_postgres_database_per_workspace(
    tmp_path: Path, monkeypatch, repo_root
) -> None:
    from caravan_workspace.registry import Context
    from caravan_workspace.runtime.databases import POSTGRES_DSN_ENV
    from caravan_workspace.runtime.local import LocalRuntime

    first = LocalRuntime(Context(repo_root, tmp_path / "one"))
    second = LocalRuntime(Context(repo_root, tmp_path / "two"))
    svc_a, svc_b = first.services["svc-a"], first.services["svc-b"]
    assert first.database_url(svc_a).startswith("sqlite:///")
    monkeypatch.setenv(POSTGRES_DSN_ENV, "postgresql://caravan:secret@127.0.0.1:5432/postgres")
    url = first.database_url(svc_a)
    assert url.startswith("postgresql://caravan:secret@127.0.0.1:5432/caravan_") and url.endswith("_svc_a")
    assert url != first.database_url(svc_b)
    assert url != second.database_url(second.services["svc-a"])


def test_a_port_offset_shifts_every_range_and_bad_ones_are_refused(
    tmp_path: Path, monkeypatch, repo_root
) -> None:
    import pytest

    from caravan_workspace.foundation import load_foundation
    from caravan_workspace.runtime.ports import PORT_OFFSET_ENV, PortBook, PortCollision
    from caravan_workspace.services import load_services

    foundation = load_foundation(repo_root, load_services(repo_root))
    plain = PortBook(tmp_path / "plain", foundation)
    monkeypatch.setenv(PORT_OFFSET_ENV, "1000")
    shifted = PortBook(tmp_path / "shifted", foundation)
    assert shifted.tier_range("svc-a") == tuple(p + 1000 for p in plain.tier_range("svc-a"))
    low, high = shifted.tier_range("gateway")
    assert low <= shifted.port_for("gateway-1", "gateway") <= high
    for bad in ("-5", "x", "99999"):
        monkeypatch.setenv(PORT_OFFSET_ENV, bad)
        with pytest.raises(PortCollision, match=PORT_OFFSET_ENV):
            PortBook(tmp_path / "bad", foundation)


def test_the_repository_gate_never_uses_the_running_services_database(
    tmp_path: Path, monkeypatch, repo_root
) -> None:
    from caravan_workspace.registry import Context
    from caravan_workspace.runtime.local import LocalRuntime
    from caravan_workspace.stages.services import configured_database

    monkeypatch.delenv("CARAVAN_TEST_POSTGRES_DSN", raising=False)
    ctx = Context(repo_root, tmp_path)
    rt = LocalRuntime(ctx)
    svc = rt.services["svc-a"]
    first = configured_database(ctx, svc)
    assert first.startswith("sqlite:///") and first != rt.database_url(svc)
    stale = Path(first.removeprefix("sqlite:///"))
    stale.write_text("left over by the last run")
    assert configured_database(ctx, svc) == first and not stale.exists()  # a fresh file each run


class FakeSession:
    """Stands in for a nox session: records what would be installed and run."""

    def __init__(self, versions: list[str]) -> None:
        self.versions = versions
        self.tests = 0
        self.logs: list[str] = []

    def install(self, *args, env=None) -> None:
        pass

    def run(self, *args, silent=False, env=None):
        if args[:2] == ("python", "-c"):
            return self.versions.pop(0)
        self.tests += 1
        return ""

    def log(self, message: str) -> None:
        self.logs.append(message)

    def error(self, message: str) -> None:
        raise AssertionError(message)

    posargs: list[str] = []


def test_one_release_in_range_is_tested_once(tmp_path: Path, monkeypatch, repo_root) -> None:
    from caravan_workspace import commons_bounds
    from caravan_workspace.runtime import index

    monkeypatch.setattr(index, "health_ok", lambda port: True)
    same = FakeSession(["0.2.0", "0.2.0"])
    assert commons_bounds.run_against_commons_bounds(same, repo_root / "svc-a", root=repo_root) == {
        "lowest": "0.2.0", "highest": "0.2.0",
    }  # fmt: skip
    assert same.tests == 1 and "already tested" in same.logs[-1]
    both = FakeSession(["0.1.0", "0.2.0"])
    commons_bounds.run_against_commons_bounds(both, repo_root / "svc-a", root=repo_root)
    assert both.tests == 2
