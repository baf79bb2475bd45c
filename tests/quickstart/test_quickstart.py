"""The README's Quickstart on a fresh machine: a clean Debian 12 container (the workspace's base
image: Python 3.11 and nothing else of ours — no Prometheus, Alertmanager, Graphviz, Docker or
debootstrap) with git, as root, a fresh clone of this repository, then exactly ``./caravan up``.
It must set the machine up by itself (the system packages through apt-get) and bring stages 1–13
up with no manual step.

Runs in its own nox session (``nox -s quickstart``; CI runs it): it needs a Docker engine and the
network to Debian's mirror and PyPI. The container gets the host's CA bundle (HTTPS may be
re-signed by a proxy on the way), nothing else of the host.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import uuid
from pathlib import Path

from caravan_workspace.images.base import ensure_base_image

ROOT = Path(__file__).resolve().parents[2]
CA_BUNDLE = Path(os.environ.get("CARAVAN_QUICKSTART_CA", "/etc/ssl/certs/ca-certificates.crt"))
CA_IN_CONTAINER = "/etc/caravan-host-ca.crt"
#: Where the container sees the test's clone (read-only); the Quickstart clones it into its home.
SOURCE_IN_CONTAINER = "/mnt/caravan-source"
#: The Quickstart's stages that must pass here (14 and 15 need a Docker engine and more inside).
MUST_PASS = range(1, 14)
MARK = "=== caravan plan ==="

# What a fresh machine is given before the Quickstart (the README's "needs"), then the Quickstart.
SCRIPT = f"""
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends git >/dev/null
git clone -q {SOURCE_IN_CONTAINER} "$HOME/caravan"
cd "$HOME/caravan"
for tool in prometheus prometheus-alertmanager dot docker debootstrap; do
    if command -v "$tool"; then echo "not a fresh machine: $tool is present"; exit 3; fi
done
set +e
./caravan up
echo "=== ./caravan up exited $? ==="
echo "{MARK}"
./caravan plan --format json
"""


def _docker(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_the_quickstart_brings_stages_1_to_13_up_on_a_fresh_debian_machine(tmp_path: Path) -> None:
    assert CA_BUNDLE.is_file(), f"no CA bundle at {CA_BUNDLE} (CARAVAN_QUICKSTART_CA names another)"
    base = ensure_base_image(print)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    name = f"caravan-quickstart-{uuid.uuid4().hex[:8]}"
    env = {
        "SSL_CERT_FILE": CA_IN_CONTAINER,
        "PIP_CERT": CA_IN_CONTAINER,
        "REQUESTS_CA_BUNDLE": CA_IN_CONTAINER,
        "GIT_SSL_CAINFO": CA_IN_CONTAINER,
        "COLUMNS": "200",
    }
    command = [
        "run", "--rm", "--name", name,
        "-v", f"{CA_BUNDLE}:{CA_IN_CONTAINER}:ro",
        "-v", f"{clone}:{SOURCE_IN_CONTAINER}:ro",
        *(a for k, v in env.items() for a in ("-e", f"{k}={v}")),
        base, "bash", "-c", SCRIPT,
    ]  # fmt: skip
    try:
        done = _docker(*command, timeout=3600)
    finally:
        _docker("rm", "-f", name)
    output = done.stdout + done.stderr
    (tmp_path / "quickstart.log").write_text(output)
    print(output[-20000:])
    assert done.returncode == 0, f"the container failed ({done.returncode}): {output[-2000:]}"
    assert "installing system packages: " in output, "./caravan up did not install the system packages"
    assert MARK in done.stdout, "./caravan up did not finish"
    plan = json.loads(done.stdout.split(MARK, 1)[1])
    status = {s["number"]: s["status"] for s in plan["stages"]}
    failing = {n: status[n] for n in MUST_PASS if status[n] != "passed"}
    assert not failing, f"stages not passing after the Quickstart: {failing}"


def test_the_script_is_the_readme_quickstart() -> None:
    """The commands the container runs after its set-up are the README's Quickstart, verbatim."""
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = quickstart.split("```sh", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("#", 1)[0]) for line in block.strip().splitlines()]
    assert ["./caravan", "up"] in commands
    assert "./caravan up\n" in SCRIPT
