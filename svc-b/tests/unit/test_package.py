import tomllib
from pathlib import Path

import svc_b

HERE = Path(__file__).resolve().parents[2]


def test_package_matches_its_declaration():
    declared = tomllib.loads((HERE / "service.toml").read_text())
    project = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]
    assert declared["name"] == svc_b.SERVICE_NAME == project["name"]
    assert declared["package"] == "svc_b"
    assert svc_b.__version__ == project["version"]
