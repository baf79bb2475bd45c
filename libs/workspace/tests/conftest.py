from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """No test touches the developer's own state folder."""
    monkeypatch.setenv("CARAVAN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CARAVAN_ROOT", raising=False)
