"""A deploy restarts a service's instances when its source changed, and only then."""

from pathlib import Path

from caravan_workspace.runtime.local import source_digest


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
    from caravan_workspace.runtime.local import POSTGRES_DSN_ENV, LocalRuntime

    first = LocalRuntime(Context(repo_root, tmp_path / "one"))
    second = LocalRuntime(Context(repo_root, tmp_path / "two"))
    svc_a, svc_b = first.services["svc-a"], first.services["svc-b"]
    assert first.database_url(svc_a).startswith("sqlite:///")
    monkeypatch.setenv(POSTGRES_DSN_ENV, "postgresql://caravan:secret@127.0.0.1:5432/postgres")
    url = first.database_url(svc_a)
    assert url.startswith("postgresql://caravan:secret@127.0.0.1:5432/caravan_") and url.endswith("_svc_a")
    assert url != first.database_url(svc_b)
    assert url != second.database_url(second.services["svc-a"])
