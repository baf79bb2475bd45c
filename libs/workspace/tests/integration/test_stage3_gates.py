"""Stage 3 end to end on a temporary workspace index: actions, gates, the release refusal."""

from __future__ import annotations

import pytest
from release_support import index_ctx_fixture  # noqa: F401  (fixture index_ctx)

import caravan_workspace.stages.commons  # noqa: F401  (registers the stage 3 actions and gates)
from caravan_workspace import registry, release
from caravan_workspace.registry import ActionError, Context, GateFailure
from caravan_workspace.runtime import index


def _gate(name: str, ctx: Context) -> str:
    return registry.GATES[name](ctx)


def test_gates_fail_with_the_fix_until_commons_is_published(index_ctx: Context) -> None:
    with pytest.raises(GateFailure) as down:
        _gate("commons.wheel_published", index_ctx)
    assert "not running" in down.value.reason and down.value.fix == "invoke stage 3"

    assert registry.ACTIONS["index.ensure"](index_ctx).changed is True
    assert registry.ACTIONS["index.ensure"](index_ctx).changed is False
    for name in ("commons.wheel_published", "commons.template_ready"):
        with pytest.raises(GateFailure) as missing:
            _gate(name, index_ctx)
        assert "not the current" in missing.value.reason
        assert missing.value.fix == "invoke commons.release"


def test_publish_action_is_idempotent_and_both_gates_pass(index_ctx: Context) -> None:
    version = release.project_version(release.commons_dir(index_ctx))
    first = registry.ACTIONS["commons.publish"](index_ctx)
    assert first.changed is True and version in first.detail
    again = registry.ACTIONS["commons.publish"](index_ctx)
    assert again.changed is False and "already on the index" in again.detail
    assert index.published_versions(index.index_url(index_ctx), "caravan-commons") == {version}

    wheel = _gate("commons.wheel_published", index_ctx)
    assert f"caravan-commons {version}" in wheel and "from that index alone" in wheel
    template = _gate("commons.template_ready", index_ctx)
    assert "passed its tests" in template and f"caravan-commons {version}" in template

    # a second release of the same version is refused before anything is built or uploaded
    with pytest.raises(release.AlreadyPublished, match="already published"):
        release.release(index_ctx, skip_tests=True)
    assert not list((index_ctx.state_dir / "tmp").iterdir())  # gate scratch folders are cleaned up


def test_publish_action_reports_a_blocked_index_port(
    index_ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        monkeypatch.setenv(index.PORT_ENV, str(foreign.getsockname()[1]))
        with pytest.raises(ActionError, match="taken by another process"):
            registry.ACTIONS["commons.publish"](index_ctx)
