"""Rendering the service template: house layout, declaration, index pinning, atomic failure."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from caravan_workspace.release import COMMONS, project_version
from caravan_workspace.runtime import index
from caravan_workspace.services import load_service
from caravan_workspace.template import TemplateError, commons_range, render_service


def test_rendered_service_has_the_house_layout(repo_root: Path, tmp_path: Path) -> None:
    folder = render_service(repo_root, "svc-d", dest_parent=tmp_path, title="Shipping")
    assert folder == tmp_path / "svc-d"
    package = folder / "src" / "svc_d"
    for part in ("domain", "service_layer", "infrastructure", "api"):
        assert (package / part / "__init__.py").is_file()
    for module in ("config.py", "bootstrap.py", "__main__.py"):
        assert (package / module).is_file()
    for speed in ("unit", "integration", "e2e"):
        assert list((folder / "tests" / speed).glob("test_*.py"))
    assert "create_app" in (package / "bootstrap.py").read_text()
    dockerfile = (folder / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") == 2 and "USER 10001" in dockerfile
    assert not (folder / "deploy").exists()  # `invoke render` derives its Nomad job and manifests
    assert not list(tmp_path.glob(".svc-d.rendering-*"))


def test_declaration_is_what_the_workspace_reads(repo_root: Path, tmp_path: Path) -> None:
    folder = render_service(repo_root, "svc-d", dest_parent=tmp_path, title="Shipping", lane="d")
    service = load_service(folder)  # the plan engine's own loader and its validation
    assert (service.name, service.title, service.package, service.lane) == ("svc-d", "Shipping", "svc_d", "d")
    assert service.routes == ("/api/svc-d",)
    assert (service.health_live, service.health_ready) == ("/health/live", "/health/ready")
    assert service.depends_on == ()
    assert (service.scaling.min, service.scaling.max, service.scaling.instances) == (1, 3, 1)


def test_pyproject_takes_commons_from_the_workspace_index_only(repo_root: Path, tmp_path: Path) -> None:
    folder = render_service(repo_root, "svc-d", dest_parent=tmp_path)
    text = (folder / "pyproject.toml").read_text()
    assert text.rstrip().endswith(index.service_index_toml().rstrip())  # the one fragment, verbatim
    data = tomllib.loads(text)
    # the range the template gives: every release of the current commons' major, from its minor
    expected = commons_range(project_version(repo_root / COMMONS))
    assert data["project"]["dependencies"] == [f"caravan-commons[server]{expected}"]
    assert expected.startswith(">=0.") and expected.endswith(",<1")
    assert data["tool"]["uv"]["sources"]["caravan-commons"] == {"index": "workspace"}
    assert all("extra-index-url" not in key for key in data["tool"]["uv"])


def test_a_failing_render_leaves_nothing_behind(repo_root: Path, tmp_path: Path) -> None:
    # a workspace whose template is broken: an undefined variable fails copier's strict rendering
    fake = tmp_path / "ws"
    shutil.copytree(repo_root / "libs" / "commons" / "template", fake / "libs" / "commons" / "template")
    shutil.copy(
        repo_root / "libs" / "commons" / "pyproject.toml", fake / "libs" / "commons" / "pyproject.toml"
    )
    broken = fake / "libs" / "commons" / "template" / "project" / "service.toml.jinja"
    broken.write_text(broken.read_text() + "{{ no_such_answer.attribute }}\n")
    out = tmp_path / "out"
    with pytest.raises(TemplateError, match="rendering svc-d failed"):
        render_service(fake, "svc-d", dest_parent=out)
    assert list(out.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(repo_root: Path, tmp_path: Path) -> None:
    (tmp_path / "svc-d").mkdir()
    (tmp_path / "svc-d" / "keep.txt").write_text("mine")
    with pytest.raises(TemplateError, match="already exists"):
        render_service(repo_root, "svc-d", dest_parent=tmp_path)
    assert [p.name for p in (tmp_path / "svc-d").iterdir()] == ["keep.txt"]
