"""`invoke new-service NAME` refuses bad names before writing anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from caravan_workspace.template import TemplateError, validate


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "svc-a").mkdir()
    (tmp_path / "svc-a" / "service.toml").write_text('name = "svc-a"\npackage = "svc_a"\n')
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "service.toml").write_text('name = "renamed"\npackage = "svc_q"\n')
    return tmp_path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../x", "not a valid service name"),
        ("a/b", "not a valid service name"),
        ("9x", "not a valid service name"),
        ("a b", "not a valid service name"),
        ("Svc", "not a valid service name"),
        ("svc_a", "not a valid service name"),
        ("svc-", "not a valid service name"),
        ("", "not a valid service name"),
        ("x" * 41, "not a valid service name"),
        ("svc-a", "already exists"),
        ("renamed", "taken by the service declared in elsewhere/service.toml"),
        ("svc-q", "taken by the service declared in elsewhere/service.toml"),
        ("json", "would shadow the module 'json'"),
        ("tests", "would shadow the module 'tests'"),
        ("caravan-commons", "would shadow the module 'caravan_commons'"),
    ],
)
def test_bad_names_are_refused(workspace: Path, name: str, message: str) -> None:
    before = sorted(p.name for p in workspace.iterdir())
    with pytest.raises(TemplateError, match=message):
        validate(name, root=workspace, dest_parent=workspace)
    assert sorted(p.name for p in workspace.iterdir()) == before


def test_a_good_name_gives_package_title_and_lane(workspace: Path) -> None:
    spec = validate("svc-d", root=workspace, dest_parent=workspace, title="Shipping")
    assert (spec.name, spec.package, spec.title, spec.lane) == ("svc-d", "svc_d", "Shipping", "svc-d")


def test_cli_refuses_a_bad_name_in_one_line_with_exit_1(tmp_path: Path, repo_root: Path) -> None:
    target = repo_root.parent / "x"  # where "../x" would land
    before = target.stat().st_mtime_ns if target.exists() else None
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "tasks.py").write_text(
        "from invoke import Collection\nfrom caravan_workspace.tasks import service\n"
        "ns = Collection(service.new_service)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(tasks), "new-service", "../x"],
        cwd=repo_root, capture_output=True, text=True, check=False,
        env={"CARAVAN_ROOT": str(repo_root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: '../x' is not a valid service name: lower-case words of letters and digits joined by '-', "
        "starting with a letter, at most 40 characters (e.g. svc-d)"
    ]
    assert (target.stat().st_mtime_ns if target.exists() else None) == before  # nothing written there
