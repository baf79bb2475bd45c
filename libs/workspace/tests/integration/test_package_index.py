"""The workspace package index: pypiserver under the workspace supervisord, on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest
from release_support import build_fake_commons, http_status, index_ctx_fixture  # noqa: F401  (fixture index_ctx)

from caravan_workspace import release
from caravan_workspace.registry import Context
from caravan_workspace.runtime import index
from caravan_workspace.runtime.supervisor import Supervisor, free_port


def _listeners(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.add(address)
    return found


def test_index_runs_on_loopback_with_private_credentials(index_ctx: Context) -> None:
    state = index.ensure_index(index_ctx)
    port = index.index_port(index_ctx)
    assert state.changed is True
    assert state.url == f"http://127.0.0.1:{port}/simple/" == index.index_url(index_ctx)
    assert index.health_ok(port)
    assert _listeners(port) == {"0100007F"}  # 127.0.0.1 and nothing else
    for secret in (index.credentials_file(index_ctx), index.htpasswd_file(index_ctx)):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    creds = index.credentials(index_ctx)
    assert creds.username == "caravan" and len(creds.password) >= 24
    assert creds.password not in index.htpasswd_file(index_ctx).read_text()  # only a hash
    program = Supervisor(index_ctx.state_dir).program(index.PROGRAM)
    assert program is not None and program.state in ("RUNNING", "STARTING")

    # the runtime's port book knows the index's listener (the network-plan gate checks it)
    from caravan_workspace.runtime.ports import read_ports

    assert read_ports(index_ctx.state_dir)[index.PROGRAM] == port

    again = index.ensure_index(index_ctx)
    assert again.changed is False
    assert index.credentials(index_ctx) == creds  # provisioning happens once


def test_upload_needs_the_credentials_and_a_version_is_accepted_once(
    index_ctx: Context, tmp_path: Path
) -> None:
    index.ensure_index(index_ctx)
    files = build_fake_commons(tmp_path / "dist", "0.1.0", "workspace", tmp_path)
    anonymous = subprocess.run(
        [
            index.uv_bin(),
            "publish",
            "--publish-url",
            index.upload_url(index_ctx),
            "-u",
            "caravan",
            "-p",
            "not-the-password",
            *map(str, files),
        ],
        env=index.uv_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert anonymous.returncode != 0
    assert index.published_versions(index.index_url(index_ctx), "caravan-commons") == set()

    release.publish(index_ctx, files)
    assert index.published_versions(index.index_url(index_ctx), "caravan-commons") == {"0.1.0"}
    with pytest.raises(release.AlreadyPublished, match=r"caravan-commons 0\.1\.0 is already published"):
        release.refuse_if_published(index_ctx, "0.1.0")
    # and the server itself refuses an overwrite, whatever a client does
    with pytest.raises(release.ReleaseError, match="uv publish failed"):
        release.publish(index_ctx, files)


def test_downloads_are_anonymous_and_unknown_names_are_not_sent_to_pypi(index_ctx: Context) -> None:
    index.ensure_index(index_ctx)
    base = f"http://127.0.0.1:{index.index_port(index_ctx)}"
    assert http_status(f"{base}/simple/") == 200
    # no fallback redirect to the public index: a name we do not hold is simply unknown
    assert http_status(f"{base}/simple/requests/") == 404
    assert http_status(f"{base}/simple/commons/") == 404


def test_crashed_index_is_restarted_and_keeps_its_packages(index_ctx: Context, tmp_path: Path) -> None:
    index.ensure_index(index_ctx)
    release.publish(index_ctx, build_fake_commons(tmp_path / "dist", "0.1.0", "workspace", tmp_path))
    sv = Supervisor(index_ctx.state_dir)
    before = sv.wait_for(index.PROGRAM, ["RUNNING"])
    assert before.pid is not None
    os.kill(before.pid, signal.SIGKILL)
    sv.wait_for(index.PROGRAM, ["RUNNING"], new_pid_not=before.pid)
    assert index.ensure_index(index_ctx).changed is False  # waits for health, changes nothing
    assert index.published_versions(index.index_url(index_ctx), "caravan-commons") == {"0.1.0"}


def test_port_taken_by_a_foreign_process_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        port = foreign.getsockname()[1]
        monkeypatch.setenv(index.PORT_ENV, str(port))
        ctx = Context(root=tmp_path, state_dir=tmp_path / "state")
        try:
            with pytest.raises(index.PackageIndexError, match=f"port {port} .* taken by another process"):
                index.ensure_index(ctx)
            assert Supervisor(ctx.state_dir).program(index.PROGRAM) is None
        finally:
            from release_support import stop_everything

            stop_everything(ctx.state_dir)


def test_recorded_port_is_reused_and_a_bad_configured_port_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = Context(root=tmp_path, state_dir=tmp_path / "state")
    monkeypatch.delenv(index.PORT_ENV, raising=False)
    assert index.index_port(ctx) == index.DEFAULT_PORT
    (tmp_path / "state" / "index").mkdir(parents=True)
    port = free_port()
    (tmp_path / "state" / "index" / "index.json").write_text(json.dumps({"port": port}))
    assert index.index_url(ctx) == f"http://127.0.0.1:{port}/simple/"
    monkeypatch.setenv(index.PORT_ENV, "http")
    with pytest.raises(index.PackageIndexError, match="CARAVAN_INDEX_PORT='http' is not a TCP port"):
        index.index_port(ctx)


def test_a_stopped_index_is_started_again(index_ctx: Context) -> None:
    index.ensure_index(index_ctx)
    sv = Supervisor(index_ctx.state_dir)
    sv.stop(index.PROGRAM)
    assert not index.health_ok(index.index_port(index_ctx))
    assert index.ensure_index(index_ctx).changed is True
    assert index.health_ok(index.index_port(index_ctx))
