"""The renderer: one source → Nomad jobs (HCL2 + JSON), Consul config entries, the kustomize tree;
the committed files equal a fresh render; the local checks catch what Nomad and Consul would."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import hcl2
import pytest

from caravan_workspace import render
from caravan_workspace.render import checks, consul, jobspec
from caravan_workspace.render import nomad as nomad_render
from caravan_workspace.render.hcl import Attr, Block, dumps
from caravan_workspace.render.model import RenderError, load_deployment, load_environment

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(scope="module")
def fresh() -> dict[Path, str]:
    return render.render(REPO)


def test_committed_files_equal_a_fresh_render(repo_root, fresh):
    assert render.drift(repo_root, fresh) == [], "run `invoke render` and commit the result"


def test_drift_is_reported_file_by_file(repo_root, fresh, tmp_path):
    copy = tmp_path / "ws"
    for folder in ("nomad", "k8s", "deploy", "foundation", "svc-a", "svc-b", "svc-c", "shared/gateway"):
        shutil.copytree(
            repo_root / folder, copy / folder, ignore=shutil.ignore_patterns(".venv", "__pycache__")
        )
    (copy / "nomad" / "dev" / "svc-a.nomad.hcl").write_text("# edited by hand\n")
    (copy / "k8s" / "base" / "stale.yaml").write_text("kind: Stale\n")
    (copy / "nomad" / "dev" / "json" / "svc-c.json").unlink()
    assert render.drift(copy, fresh) == [
        "nomad/dev/json/svc-c.json is missing",
        "nomad/dev/svc-a.nomad.hcl differs from a fresh render",
        "k8s/base/stale.yaml is no longer rendered",
    ]
    touched = render.write(copy, fresh)
    assert set(map(str, touched)) == {
        "nomad/dev/svc-a.nomad.hcl",
        "nomad/dev/json/svc-c.json",
        "k8s/base/stale.yaml",
    }
    assert render.drift(copy, fresh) == []


def test_every_job_parses_fits_the_jobspec_and_says_what_its_json_says(repo_root, fresh):
    for env in ("dev", "prod"):
        for name in ("gateway", "svc-a", "svc-b", "svc-c"):
            parsed = hcl2.loads(fresh[Path("nomad", env, f"{name}.nomad.hcl")])
            job, variables = jobspec.from_hcl2(parsed)
            assert jobspec.check_structure(job) == []
            assert jobspec.check_semantics(job, drain_s=load_environment(repo_root, env).drain_s) == []
            committed = json.loads(fresh[Path("nomad", env, "json", f"{name}.json")])
            assert jobspec.to_api(job) == committed
            assert checks.api_problems(committed, name) == []
            assert set(variables) == {"image_tag", "count", "revision"}


def test_the_json_form_uses_nanoseconds_and_the_hcl_variables_resolve(repo_root, fresh):
    job = json.loads(fresh[Path("nomad", "prod", "json", "svc-b.json")])["Job"]
    (group,) = job["TaskGroups"]
    (task,) = group["Tasks"]
    assert task["KillTimeout"] == 30 * 10**9 and task["ShutdownDelay"] == 5 * 10**9
    assert job["Update"]["HealthyDeadline"] == 180 * 10**9 and job["Update"]["AutoRevert"] is True
    assert group["Count"] == 2 and task["Config"]["image"] == "caravan/svc-b:0.1.0"
    proxy = group["Services"][0]["Connect"]["SidecarService"]["Proxy"]
    assert [u["DestinationName"] for u in proxy["Upstreams"]] == [
        "svc-a", "svc-c"]  # fmt: skip
    assert job["Meta"] == {"version": "0.1.0", "revision": "unset"}
    assert job["UI"]["Links"][0]["Label"] == "Runbook"
    # the same file with other variable values
    parsed = hcl2.loads(fresh[Path("nomad", "prod", "svc-b.nomad.hcl")])
    block, _ = jobspec.from_hcl2(parsed, {"image_tag": "0.1.0-abc123", "count": 3, "revision": "abc123"})
    api = jobspec.to_api(block)["Job"]
    assert api["TaskGroups"][0]["Tasks"][0]["Config"]["image"] == "caravan/svc-b:0.1.0-abc123"
    assert api["TaskGroups"][0]["Count"] == 3 and api["Meta"]["revision"] == "abc123"


def test_rendered_files_do_not_name_the_commit(fresh):
    # a commit must not change the rendered files: the revision is set at deploy time
    assert all("revision = var.revision" in t for p, t in fresh.items() if p.suffix == ".hcl")


def _job_from(text: str) -> Block:
    return jobspec.from_hcl2(hcl2.loads(text))[0]


def test_structure_check_reports_unknown_blocks_attributes_kinds_and_labels():
    job = _job_from("""
job "x" {
  datacenter = ["dc1"]
  group "x" {
    count = "two"
    task "x" {
      driver = "docker"
      kill_timeout = "thirty seconds"
      config { image = "i" }
      resource { cpu = 100 }
    }
    scaling {
      min = 1
      max = 2
      policy {
        check "cpu" {
          source = "prometheus"
          strategy "target-valu" { target = 70 }
        }
      }
    }
  }
  update { canary = 1 }
  update { canary = 2 }
  ui { link "docs" { url = "u" } }
}
""")
    errors = jobspec.check_structure(job)
    assert "job \"x\": unknown attribute 'datacenter'" in errors
    assert 'job "x" > group "x": count = \'two\' is not a int' in errors
    assert 'job "x" > group "x" > task "x": kill_timeout = \'thirty seconds\' is not a dur' in errors
    assert 'job "x" > group "x" > task "x": unknown block \'resource\'' in errors
    assert 'job "x" > group "x" > scaling > policy > check "cpu": missing query' in errors
    assert 'job "x" > group "x" > scaling > policy > check "cpu": unknown strategy \'target-valu\'' in errors
    assert "job \"x\": block 'update' given twice" in errors
    assert 'job "x" > ui > link "docs": takes 0 label(s), has 1' in errors


def test_semantic_check_gives_nomads_validation_errors():
    job = Block("job", ("x",), [
        Block("update", body=[Attr("auto_promote", True), Attr("min_healthy_time", "5m"),
                              Attr("healthy_deadline", "1m")]),
        Block("group", ("x",), [
            Attr("count", 5),
            Block("network", body=[Attr("mode", "bridge")]),
            Block("service", body=[Attr("name", "x"), Attr("port", "http"),
                                   Block("check", body=[Attr("type", "http")])]),
            Block("service", body=[Attr("name", "y"), Attr("provider", "nomad")]),
            Block("scaling", body=[Attr("min", 1), Attr("max", 3)]),
            Block("task", ("x",), [Attr("kill_timeout", "10s"), Block("config", body=[])]),
        ]),
    ])  # fmt: skip
    errors = jobspec.check_semantics(job, drain_s=20)
    assert errors == [
        "job x: Auto Promote requires a Canary count greater than zero",
        "job x: Minimum healthy time must be less than healthy deadline",
        "group x: Multiple service providers used: task group services must use the same provider",
        'group x: port label "http" referenced by services [x] does not exist',
        "group x: http type must have http path",
        "group x: task group count must not be greater than maximum count in scaling policy",
        "group x: Missing task driver",
        "group x: kill_timeout 10s must be longer than the drain (20s)",
    ]


def test_hcl_strings_never_interpolate_by_accident():
    text = dumps([Block("job", ("x",), [Block("meta", body=[Attr("a", 'say "${hi}" %{x}\\n')])])])
    job = _job_from(text)
    assert job.block("meta").attrs()["a"] == 'say "${hi}" %{x}\\n'  # type: ignore[union-attr]


def test_api_check_reports_unknown_keys_and_string_durations():
    job = {"Job": {"ID": "x", "Datacenter": ["dc1"], "TaskGroups": [{"Name": "x", "Tasks": [
        {"Name": "x", "KillTimeout": "30s", "Config": {"anything": 1}}]}]}}  # fmt: skip
    assert checks.api_problems(job, "x") == [
        "x: .Job.Datacenter is not a Nomad API key",
        "x: .Job.TaskGroups[0].Tasks[0].KillTimeout = '30s' must be integer nanoseconds",
    ]


def test_intentions_deny_by_default_and_allow_exactly_the_flows_narrowed_by_path(repo_root, fresh):
    entries = {p.name: json.loads(t) for p, t in fresh.items() if p.parent == render.CONSUL_DIR}
    deny = entries["service-intentions-default-deny.json"]
    assert deny["Name"] == "*" and deny["Sources"] == [{**deny["Sources"][0], "Name": "*", "Action": "deny"}]
    svc_a = {s["Name"]: s for s in entries["service-intentions-svc-a.json"]["Sources"]}
    assert set(svc_a) == {"gateway", "svc-b", "monitoring"}
    assert svc_a["svc-b"]["Action"] == "allow"
    reservations = [p["HTTP"] for p in svc_a["gateway"]["Permissions"] if "reservations" in str(p)]
    assert reservations == [{"PathExact": "/reservations", "Methods": ["GET", "HEAD"]},
                            {"PathPrefix": "/reservations/", "Methods": ["GET", "HEAD"]}]  # fmt: skip
    assert {s["Name"] for s in entries["service-intentions-gateway.json"]["Sources"]} == {"monitoring"}
    assert all(e["Protocol"] == "http" for n, e in entries.items() if n.startswith("service-defaults"))
    deployment = load_deployment(repo_root)
    assert checks.intention_flow_problems(deployment, list(entries.values())) == []
    extra = {"Kind": "service-intentions", "Name": "svc-c", "Sources": [{"Name": "svc-a", "Action": "allow"}]}
    assert checks.intention_flow_problems(deployment, [*entries.values(), extra]) == [
        "intention svc-a → svc-c is not a foundation flow"
    ]


def test_config_entry_check_catches_what_consul_refuses():
    bad = {"Kind": "service-intentions", "Name": "svc-a", "Source": [], "Sources": [
        {"Name": "gateway", "Action": "allow",
         "Permissions": [{"Action": "allow", "HTTP": {"PathPrefix": "x"}}]},
        {"Name": "svc-b", "Permissions": [{"Action": "permit", "HTTP": {"PathExact": "/a",
                                                                       "PathPrefix": "/a/",
                                                                       "Methods": ["FETCH"]}}]},
    ]}  # fmt: skip
    assert consul.check_entry(bad, {"svc-a": "tcp"}) == [
        "service-intentions svc-a: unknown field 'Source'",
        "service-intentions svc-a source gateway: exactly one of Action and Permissions must be set",
        "service-intentions svc-a source gateway: L7 Permissions need protocol http for svc-a "
        "(service-defaults)",
        "service-intentions svc-a source gateway: PathPrefix must begin with '/'",
        "service-intentions svc-a source svc-b: L7 Permissions need protocol http for svc-a "
        "(service-defaults)",
        "service-intentions svc-a source svc-b: a permission's Action must be allow or deny",
        "service-intentions svc-a source svc-b: at most one of PathExact, PathPrefix, PathRegex",
        "service-intentions svc-a source svc-b: unknown methods ['FETCH']",
    ]
    assert consul.check_entry({"Kind": "service-defaults", "Name": "x", "Protocol": "https"}) == [
        "service-defaults x: Protocol 'https' is not one of ['grpc', 'http', 'http2', 'tcp']"
    ]


def test_a_bad_environment_file_is_one_line(repo_root, tmp_path):
    folder = tmp_path / "deploy" / "environments"
    folder.mkdir(parents=True)
    (folder / "dev.toml").write_text(
        "colour = 1\n" + (repo_root / "deploy/environments/dev.toml").read_text()
    )
    with pytest.raises(RenderError, match=r"^deploy/environments/dev.toml: unknown key 'colour'$"):
        load_environment(tmp_path, "dev")
    with pytest.raises(RenderError, match=r"^no environment 'staging' \(known: dev\)$"):
        load_environment(tmp_path, "staging")


def test_hcl_and_api_forms_agree_on_every_variable_value(repo_root):
    deployment = load_deployment(repo_root)
    env = load_environment(repo_root, "dev")
    d = deployment.deployables["gateway"]
    api = nomad_render.api_job(d, deployment, env, image_tag="9.9.9", count=4, revision="r")
    job, _ = jobspec.from_hcl2(hcl2.loads(nomad_render.hcl_text(d, deployment, env)),
                               {"image_tag": "9.9.9", "count": 4, "revision": "r"})  # fmt: skip
    assert jobspec.to_api(job) == api


def test_parity_nomad_jobs_kubernetes_manifests_and_service_toml_agree(repo_root, fresh):
    deployment = load_deployment(repo_root)
    assert checks.parity_problems(repo_root, fresh, deployment) == []
    # a manifest that drifted from the declaration is named, field by field
    broken = dict(fresh)
    base = Path("k8s/base/svc-c.yaml")
    broken[base] = (
        fresh[base]
        .replace("maxReplicas: 3", "maxReplicas: 5")
        .replace("path: /health/live", "path: /healthz")
        .replace("CARAVAN_SHUTDOWN_TIMEOUT_S: '20'", "CARAVAN_SHUTDOWN_TIMEOUT_S: '5'")
    )
    problems = checks.parity_problems(repo_root, broken, deployment)
    assert "dev svc-c: scaling bounds differ: [(1, 3), (1, 5)] vs service.toml" in problems
    assert "dev svc-c: health paths differ (Nomad ['/health/live', '/health/ready'], Kubernetes " \
        "['/health/ready', '/healthz'])" in problems  # fmt: skip
    assert any(p.startswith("dev svc-c: environment differs") for p in problems)


def test_every_file_a_job_names_is_written_from_the_jobs_own_variable(repo_root, fresh):
    """Each service reads its identity key, the public keys and its secret (svc-b's order ids)
    from files its templates write out of the job's Nomad Variable: one per job, so all of svc-b's
    allocations share one secret."""
    for env in ("dev", "prod"):
        for name in ("gateway", "svc-a", "svc-b", "svc-c"):
            api = json.loads(fresh[Path("nomad", env, "json", f"{name}.json")])
            assert checks.nomad_file_problems(api, name, name) == []
            (task,) = api["Job"]["TaskGroups"][0]["Tasks"]
            if name != "gateway":
                assert task["Env"]["CARAVAN_SECRET_KEY_FILE"] == "/secrets/secret.key"
                (secret,) = [t for t in task["Templates"] if t["DestPath"] == "secrets/secret.key"]
                assert (
                    secret["EmbeddedTmpl"]
                    == f'{{{{ with nomadVar "nomad/jobs/{name}" }}}}{{{{ .secret_key }}}}{{{{ end }}}}'
                )
                assert secret["Perms"] == "0400"
            else:
                policy = json.loads(task["Env"]["CARAVAN_GATEWAY_POLICY"])
                assert set(policy) == {"svc-a", "svc-b", "svc-c"} and policy["svc-b"] is None
    api = json.loads(fresh[Path("nomad/dev/json/svc-b.json")])
    (task,) = api["Job"]["TaskGroups"][0]["Tasks"]
    task["Templates"] = [t for t in task["Templates"] if t["DestPath"] != "secrets/secret.key"]
    task["Templates"][0]["EmbeddedTmpl"] = task["Templates"][0]["EmbeddedTmpl"].replace(
        "jobs/svc-b", "jobs/svc-a"
    )
    assert checks.nomad_file_problems(api, "svc-b", "x") == [
        "x: CARAVAN_SECRET_KEY_FILE=/secrets/secret.key is not written by any template",
        "x: secrets/identity.key is not read from nomad/jobs/svc-b",
    ]
