"""schemathesis against a real create_app service: every status code and content type the
service answers with is documented (no ST103/ST105), bodies match their schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from test_core_server import start

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))


def run_schemathesis(base: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCHEMATHESIS, "run", f"{base}/schema/openapi.json", "--checks", "all", "--max-examples", "40",
         "--seed", "1", "--no-color"],
        cwd=workdir, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_schemathesis_finds_nothing_undocumented(tmp_path: Path) -> None:
    service = start(tmp_path)
    try:
        result = run_schemathesis(service.base, tmp_path)
    finally:
        service.stop()
    assert result.returncode == 0, result.stdout[-4000:]
    assert "No issues found" in result.stdout


def test_negative_control_without_commons_documentation_fails(tmp_path: Path) -> None:
    service = start(tmp_path, probe="/schema/openapi.json", CORE_SERVICE_UNDOCUMENTED="1")
    try:
        result = run_schemathesis(service.base, tmp_path)
    finally:
        service.stop()
    assert result.returncode != 0
    assert "Undocumented Content-Type" in result.stdout or "Undocumented HTTP status code" in result.stdout
