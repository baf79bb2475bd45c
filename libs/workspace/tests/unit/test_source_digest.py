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
