"""`invoke render`, `invoke deploy` and `invoke scale` from the command line: bad input is one line
and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

INVOKE = Path(sys.executable).with_name("invoke")
REPO = Path(__file__).resolve().parents[4]


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(INVOKE), *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NOMAD_ADDR": "http://127.0.0.1:9",
                               "CONSUL_HTTP_ADDR": "127.0.0.1:9"})  # fmt: skip


def test_render_check_passes_on_the_committed_tree():
    done = invoke("render", "--check")
    assert done.returncode == 0 and "rendered files match the source" in done.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("deploy", "--target", "swarm"), 2, "error: unknown target 'swarm' (targets: nomad, k8s, docker)"),
        (("deploy", "--target", "nomad", "--env", "qa"), 2, "error: unknown environment 'qa' (dev, prod)"),
        (("scale", "svc-a", "9"), 2, "error: svc-a scales between 1 and 3 instances (service.toml), not 9"),
        (("scale", "svc-z", "1"), 2, "error: no service 'svc-z' (services: svc-a, svc-b, svc-c)"),
        (("scale", "svc-a", "two"), 2, "error: COUNT must be a whole number, not 'two'"),
        (
            ("scale", "svc-a", "2"),
            1,
            "error: svc-a is not running here: bring its stage up first (invoke up)",
        ),
    ],
)
def test_bad_input_is_one_line(args, code, message):
    done = invoke(*args)
    assert (done.returncode, done.stderr.strip()) == (code, message)


def test_deploy_nomad_without_an_agent_names_what_failed():
    done = invoke("deploy", "--target", "nomad", "--dry-run")
    assert done.returncode == 1
    assert (
        done.stderr.startswith("error: nomad validate svc-a:") and len(done.stderr.strip().splitlines()) == 1
    )
