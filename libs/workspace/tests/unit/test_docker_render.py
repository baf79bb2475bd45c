"""The Docker target's rendering (no engine): the foundation model as networks, the containers'
settings, and the Dockerfiles held to one shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

from caravan_workspace.deploy.docker import PORT, SECRETS, render
from caravan_workspace.images.build import deployables
from caravan_workspace.registry import Context


def _render(root: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    ctx = Context(root=root, state_dir=tmp_path)
    images = {d.name: f"caravan/{d.name}:test" for d in deployables(root)}
    return render(ctx, "t", images, port=18090)


def test_one_internal_network_per_callee_joined_by_its_allowed_callers(repo_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    networks, _ = _render(repo_root, tmp_path)
    by_name = {n.name: n for n in networks}
    assert set(by_name["t-to-svc-a"].members) == {"svc-a", "svc-b", "gateway"}
    assert set(by_name["t-to-svc-c"].members) == {"svc-c", "svc-b", "gateway"}
    assert set(by_name["t-to-svc-b"].members) == {"svc-b", "gateway"}
    assert by_name["t-edge"].members == ("gateway",) and not by_name["t-edge"].internal
    assert all(n.internal for n in networks if n.name != "t-edge")


def test_svc_c_shares_no_network_with_svc_a(repo_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, containers = _render(repo_root, tmp_path)
    joined = {c.member: set(c.networks) for c in containers}
    assert not joined["svc-c"] & joined["svc-a"]
    assert "t-edge" not in joined["svc-a"] | joined["svc-b"] | joined["svc-c"]


def test_only_the_gateway_is_published_and_on_loopback(repo_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, containers = _render(repo_root, tmp_path)
    published = {c.member: c.publish for c in containers if c.publish}
    assert published == {"gateway": f"127.0.0.1:18090:{PORT}"}


def test_dependencies_start_first_and_settings_come_by_environment(repo_root, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _, containers = _render(repo_root, tmp_path)
    order = [c.member for c in containers]
    assert order.index("svc-b") > max(order.index("svc-a"), order.index("svc-c"))
    assert order[-1] == "gateway"
    svc_b = next(c for c in containers if c.member == "svc-b")
    assert svc_b.env["CARAVAN_UPSTREAM_SVC_A"] == f"http://svc-a:{PORT}"
    assert svc_b.env["CARAVAN_IDENTITY_KEY_FILE"] == f"{SECRETS}/svc-b.key"
    assert svc_b.env["CARAVAN_DATABASE_URL"].startswith("sqlite:////var/lib/caravan/")
    svc_c = next(c for c in containers if c.member == "svc-c")
    assert not [k for k in svc_c.env if k.startswith("CARAVAN_UPSTREAM_")]


def test_each_service_gets_its_secret_and_the_gateway_its_policy_as_on_the_local_runtime(
    repo_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CARAVAN_GATEWAY_RATE_PER_SECOND", "5000")
    _, containers = _render(repo_root, tmp_path)
    by_member = {c.member: c for c in containers}
    for name in ("svc-a", "svc-b", "svc-c"):
        assert by_member[name].env["CARAVAN_SECRET_KEY_FILE"] == f"{SECRETS}/{name}.secret"
    gateway = by_member["gateway"].env
    assert "CARAVAN_SECRET_KEY_FILE" not in gateway
    policy = json.loads(gateway["CARAVAN_GATEWAY_POLICY"])
    assert set(policy) == {"svc-a", "svc-b", "svc-c"}
    # through the gateway svc-a's reservations are read-only: POST /reservations is not in its rules
    assert policy["svc-b"] is None and not any(
        r.startswith("POST") and "reservations" in r for r in policy["svc-a"]
    )
    assert gateway["CARAVAN_RATE_PER_SECOND"] == "5000" and "CARAVAN_RATE_BURST" not in gateway


def test_the_secrets_folders_hold_each_containers_own_files_read_only(
    repo_root, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from caravan_workspace.deploy import docker as target

    monkeypatch.setattr(
        target,
        "_provision_api_keys",
        lambda folder, image, project: (
            folder.mkdir(parents=True, exist_ok=True),
            (folder / "api-keys.json").write_text("{}"),
        ),
    )
    ctx = Context(root=repo_root, state_dir=tmp_path)
    target.provision_secrets(ctx, "t", ["svc-a", "svc-b", "gateway"], "caravan/gateway:test")
    folders = tmp_path / "docker" / "t" / "secrets"
    held = {f.name: sorted(p.name for p in f.iterdir()) for f in folders.iterdir()}
    assert held == {
        "svc-a": ["public-keys.json", "svc-a.key", "svc-a.secret"],
        "svc-b": ["public-keys.json", "svc-b.key", "svc-b.secret"],
        "gateway": ["api-keys.json", "gateway.key", "public-keys.json"],
    }
    assert {oct(p.stat().st_mode & 0o777) for f in folders.iterdir() for p in f.iterdir()} == {"0o400"}
    assert (folders / "svc-b" / "svc-b.secret").read_text() == (
        tmp_path / "docker/t/identity/svc-b.secret"
    ).read_text()


def test_a_postgres_dsn_gives_each_service_a_database_of_its_own(repo_root, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CARAVAN_DOCKER_POSTGRES_DSN", "postgresql://u:p@db.internal:5432/postgres")
    networks, containers = _render(repo_root, tmp_path)
    urls = {c.env["CARAVAN_DATABASE_URL"] for c in containers if c.member != "gateway"}
    assert urls == {f"postgresql://u:p@db.internal:5432/caravan_t_{p}" for p in ("svc_a", "svc_b", "svc_c")}
    assert any(n.name == "t-data" for n in networks)


def test_every_dockerfile_is_the_same_file_but_for_its_folder_name_and_module(repo_root) -> None:  # type: ignore[no-untyped-def]
    shapes = {}
    for d in deployables(repo_root):
        text = (repo_root / d.dockerfile).read_text()
        text = text.replace(d.folder, d.name).replace(d.package, "MODULE").replace("the gateway", d.name)
        text = re.sub(rf"\b{re.escape(d.name)}\b", "NAME", text)
        shapes[d.name] = text
    first = shapes["svc-a"]
    assert all(shape == first for shape in shapes.values()), [n for n, s in shapes.items() if s != first]


def test_each_service_dockerfile_is_what_the_service_template_renders(repo_root) -> None:  # type: ignore[no-untyped-def]
    import jinja2

    template = (repo_root / "libs/commons/template/project/Dockerfile.jinja").read_text()
    for d in deployables(repo_root):
        if d.name == "gateway":
            continue
        rendered = jinja2.Template(template, keep_trailing_newline=True).render(
            name=d.name, package=d.package, index_name="workspace"
        )
        assert rendered == (repo_root / d.dockerfile).read_text(), f"{d.dockerfile} drifted from the template"
