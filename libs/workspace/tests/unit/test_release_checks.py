"""Release preconditions and the pieces of the index/template that need no server."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_workspace import release
from caravan_workspace.registry import Context
from caravan_workspace.runtime import index
from caravan_workspace.template import TemplateError, commons_range


def _workspace(tmp_path: Path, version: str, changelog: str) -> Context:
    commons = tmp_path / "libs" / "commons"
    commons.mkdir(parents=True)
    (commons / "pyproject.toml").write_text(f'[project]\nname = "caravan-commons"\nversion = "{version}"\n')
    (commons / "CHANGELOG.md").write_text(changelog)
    return Context(root=tmp_path, state_dir=tmp_path / "state")


def test_version_with_a_changelog_section_is_accepted(tmp_path: Path) -> None:
    ctx = _workspace(tmp_path, "0.2.0", "# Changelog\n\n## [Unreleased]\n\n## [0.2.0]\n- x\n\n## [0.1.0]\n")
    assert release.check_version(ctx) == "0.2.0"
    assert release.check_version(ctx, "0.2.0") == "0.2.0"
    assert release.check_version(ctx, "v0.2.0") == "0.2.0"


def test_a_version_without_a_changelog_section_is_refused(tmp_path: Path) -> None:
    ctx = _workspace(tmp_path, "0.3.0", "# Changelog\n\n## [0.2.0]\n- mentions 0.3.0 in passing\n")
    with pytest.raises(release.ReleaseError, match=r"CHANGELOG.md has no section for 0\.3\.0"):
        release.check_version(ctx)


def test_requested_version_must_match_the_pyproject(tmp_path: Path) -> None:
    ctx = _workspace(tmp_path, "0.2.0", "## [0.2.0]\n")
    with pytest.raises(release.ReleaseError, match=r"--version 1\.0\.0 does not match .*\(version 0\.2\.0\)"):
        release.check_version(ctx, "1.0.0")


def test_missing_or_broken_pyproject_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(release.ReleaseError, match="does not exist"):
        release.project_version(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(release.ReleaseError, match="not valid TOML"):
        release.project_version(tmp_path)


def test_the_real_commons_version_has_a_changelog_section(repo_root: Path) -> None:
    ctx = Context(root=repo_root, state_dir=repo_root / ".caravan")
    assert release.check_version(ctx) == release.project_version(repo_root / "libs" / "commons")


@pytest.mark.parametrize(
    ("filename", "version"),
    [
        ("caravan_commons-0.1.0-py3-none-any.whl", "0.1.0"),
        ("caravan_commons-1.2.3rc1.tar.gz", "1.2.3rc1"),
        ("caravan-commons-0.4.0.tar.gz", "0.4.0"),
        ("not-a-dist.txt", None),
    ],
)
def test_file_versions_are_read_from_distribution_names(filename: str, version: str | None) -> None:
    assert index.file_version(filename) == version


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_commons_range_allows_the_version_and_its_major_only(major: int, minor: int, patch: int) -> None:
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(commons_range(f"{major}.{minor}.{patch}"))
    assert f"{major}.{minor}.{patch}" in spec
    assert f"{major}.{minor + 1}.0" in spec
    assert f"{major + 1}.0.0" not in spec
    if minor > 0:
        assert f"{major}.{minor - 1}.0" not in spec


def test_commons_range_refuses_a_non_semver_version() -> None:
    with pytest.raises(TemplateError):
        commons_range("latest")


def test_the_service_fragment_pins_commons_to_the_explicit_workspace_index() -> None:
    import tomllib

    data = tomllib.loads(index.service_index_toml())
    assert data["tool"]["uv"]["index"] == [
        {"name": "workspace", "url": f"http://127.0.0.1:{index.DEFAULT_PORT}/simple/", "explicit": True}
    ]
    assert data["tool"]["uv"]["sources"] == {"caravan-commons": {"index": "workspace"}}


def test_uv_env_drops_inherited_index_settings_and_names_the_workspace_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(index.PORT_ENV, "4567")
    ctx = Context(root=tmp_path, state_dir=tmp_path / "state")
    env = index.uv_env(
        ctx, base={"UV_EXTRA_INDEX_URL": "http://elsewhere/", "UV_INDEX_URL": "x", "HOME": "/h"}
    )
    assert env == {"HOME": "/h", "UV_INDEX": "workspace=http://127.0.0.1:4567/simple/"}


def test_release_uses_the_nox_session_commons_when_the_noxfile_has_one(
    repo_root: Path, tmp_path: Path
) -> None:
    assert release._has_nox_session(repo_root, "commons") is True
    assert release._has_nox_session(repo_root, "no_such_session") is False
    assert release._has_nox_session(tmp_path, "commons") is False  # no noxfile: pytest in a uv venv
