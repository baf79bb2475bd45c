"""`invoke deploy --target nomad` against fake Nomad and Consul agents (real HTTP servers on
loopback) that implement the documented contracts strictly — see fake_agents.py. Live agents:
test_live_deploy_nomad.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_agents import Agents

from caravan_workspace.deploy import DeployError
from caravan_workspace.deploy.nomad import NomadDeploy, Waits, clients, deploy
from caravan_workspace.render import nomad as nomad_render
from caravan_workspace.render.model import load_deployment, load_environment


@pytest.fixture(autouse=True)
def _no_real_agents(monkeypatch):
    for name in ("NOMAD_ADDR", "NOMAD_TOKEN", "NOMAD_NAMESPACE", "NOMAD_REGION", "NOMAD_CACERT",
                 "CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_CACERT", "CONSUL_HTTP_SSL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def agents():
    with Agents() as running:
        yield running


def run(repo_root: Path, agents: Agents, *, dry_run: bool = False, checks_s: float = 5.0) -> list[str]:
    lines: list[str] = []
    nomad, consul = clients(agents.env)
    deployer = NomadDeploy(
        nomad, consul, lines.append, Waits(poll_s=0.01, deployment_s=10, checks_s=checks_s)
    )
    deploy(repo_root, "dev", tag=None, dry_run=dry_run, out=lines.append, deployer=deployer)
    return lines


def test_contract_deploys_entries_then_jobs_in_dependency_order(repo_root, agents):
    lines = run(repo_root, agents)
    log = agents.nomad.log
    registered = [e.split()[1] for e in log if e.startswith("register")]
    assert registered == ["svc-a", "svc-c", "svc-b", "gateway"]
    # every job validated and planned before it is registered
    for name in registered:
        assert log.index(f"validate {name}") < log.index(f"plan {name}") < log.index(f"register {name}")
    # intentions (and protocol http first: L7 permissions need it) before any job
    assert ("service-intentions", "*") in agents.consul.entries
    first = next(e for e in agents.consul.log if e.startswith("config"))
    assert first.startswith("config service-defaults")
    assert agents.consul.entries[("service-intentions", "svc-a")]["Sources"][0]["Name"] == "gateway"
    # svc-b registered only once svc-a and svc-c passed their checks
    health = agents.consul.log
    assert "health svc-a 1" in health and "health svc-c 1" in health
    assert any(line == "svc-b: 1 of 1 instances pass their Consul checks" for line in lines)
    assert "plan svc-a: added" in lines and "deployed 4 jobs to Nomad" in lines
    assert agents.nomad.dropped == []  # no key of ours that Nomad would silently drop


def test_contract_second_deploy_plans_no_change_and_a_count_change_as_a_diff(repo_root, agents):
    run(repo_root, agents)
    lines = run(repo_root, agents)
    assert "plan svc-a: no change" in lines
    agents.nomad.jobs["svc-b"]["taskgroups"][0]["count"] = 3  # someone scaled it by hand
    lines = run(repo_root, agents, dry_run=True)
    assert "plan svc-b: edited" in lines
    assert '    +/- Count: "3" => "1"' in lines


def test_contract_failed_deployment_stops_names_the_job_and_prints_task_events(repo_root, agents):
    agents.nomad.failing.add("svc-c")
    lines: list[str] = []
    with pytest.raises(DeployError, match=r"^svc-c: deployment failed: Failed due to unhealthy allocations"):
        lines = run_collecting(repo_root, agents, lines)
    assert any("task svc-c: Driver Failure: Failed to pull" in line for line in lines)
    registered = [e.split()[1] for e in agents.nomad.log if e.startswith("register")]
    assert "svc-b" not in registered and "gateway" not in registered


def test_contract_a_check_that_never_passes_stops_before_the_dependents(repo_root, agents):
    agents.nomad.never_passing.add("svc-a")
    with pytest.raises(DeployError, match=r"^svc-a: 0 of 1 instances pass their Consul checks"):
        run(repo_root, agents, checks_s=0.3)
    registered = [e.split()[1] for e in agents.nomad.log if e.startswith("register")]
    assert "svc-b" not in registered and "gateway" not in registered


def test_contract_dry_run_prints_plans_only(repo_root, agents):
    lines = run(repo_root, agents, dry_run=True)
    assert not [e for e in agents.nomad.log if e.startswith("register")]
    assert agents.consul.entries == {}
    assert [line for line in lines if line.startswith("plan ")] == [
        f"plan {n}: added" for n in ("svc-a", "svc-c", "svc-b", "gateway")
    ]
    assert (
        "would write Consul config entry service-intentions * (service-intentions-default-deny.json)" in lines
    )


def test_contract_validation_errors_in_a_200_stop_the_deploy(repo_root, agents):
    deployment = load_deployment(repo_root)
    env = load_environment(repo_root, "dev")
    job = nomad_render.api_job(deployment.deployables["svc-a"], deployment, env, count=9)  # max is 3
    nomad, consul = clients(agents.env)
    deployer = NomadDeploy(nomad, consul, print, Waits(poll_s=0.01))
    with pytest.raises(DeployError, match="count must not be greater than maximum count in scaling policy"):
        deployer.validate("svc-a", job)


def test_contract_fake_nomad_is_strict_about_durations_and_drops_unknown_keys(repo_root, agents):
    import requests

    deployment = load_deployment(repo_root)
    env = load_environment(repo_root, "dev")
    job = nomad_render.api_job(deployment.deployables["svc-a"], deployment, env)
    job["Job"]["TaskGroups"][0]["Tasks"][0]["KillTimeout"] = "30s"
    answer = requests.post(f"{agents.env['NOMAD_ADDR']}/v1/job/svc-a", json=job, timeout=5)
    assert answer.status_code == 400 and "time.Duration" in answer.text
    job["Job"]["TaskGroups"][0]["Tasks"][0]["KillTimeout"] = 30 * 10**9
    job["Job"]["Datacenter"] = ["dc1"]  # a typo of Datacenters: accepted, dropped
    assert requests.post(f"{agents.env['NOMAD_ADDR']}/v1/job/svc-a", json=job, timeout=5).status_code == 200
    assert agents.nomad.dropped == ["Job.Datacenter"]


def test_contract_fake_consul_refuses_unknown_fields_and_l7_without_http(agents):
    import requests

    url = f"{agents.env['CONSUL_HTTP_ADDR']}/v1/config"
    entry = {
        "Kind": "service-intentions",
        "Name": "svc-a",
        "Sources": [
            {"Name": "gateway", "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "/stock/"}}]}
        ],
    }
    assert requests.put(url, data=json.dumps(entry), timeout=5).status_code == 400  # protocol still tcp
    assert requests.put(url, data=json.dumps({"Kind": "service-defaults", "Name": "svc-a", "Protocol": "http",
                                              "Protcol": "http"}), timeout=5).status_code == 400  # fmt: skip


def run_collecting(repo_root: Path, agents: Agents, lines: list[str]) -> list[str]:
    nomad, consul = clients(agents.env)
    deployer = NomadDeploy(nomad, consul, lines.append, Waits(poll_s=0.01, deployment_s=10, checks_s=5))
    deploy(repo_root, "dev", tag=None, dry_run=False, out=lines.append, deployer=deployer)
    return lines
