"""The console's readers on their own: a log read backwards across block boundaries, the plan
graph drawn once per picture, Prometheus asked once a minute, a broken environment file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from caravan_workspace.console_web.readers import metrics
from caravan_workspace.console_web.readers.deployments import environments_view
from caravan_workspace.console_web.readers.logs import CHUNK, LogFilter, read_tail
from caravan_workspace.registry import Context


def test_a_log_read_backwards_loses_and_cuts_no_line(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    lines = [json.dumps({"level": "INFO", "message": f"line {i} " + "x" * (i % 97)}) for i in range(6000)]
    log.write_text("\n".join(lines) + "\n")
    assert log.stat().st_size > 3 * CHUNK
    shown, size = read_tail(log, LogFilter(), limit=2500)
    assert size == log.stat().st_size
    assert [line.message.split(" ")[1] for line in shown] == [str(i) for i in range(3500, 6000)]
    some, _ = read_tail(log, LogFilter.parse(None, "line 1234 ", None))
    assert [line.message.split(" ")[1] for line in some] == ["1234"]


def test_prometheus_is_asked_once_a_minute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []
    monkeypatch.setattr(metrics, "prometheus_url", lambda state_dir: "http://127.0.0.1:9")
    monkeypatch.setattr(metrics, "route_metrics", lambda base, end: asked.append(end) or [])
    cache = metrics.MetricsCache()
    for now in (600.0, 610.0, 659.9, 660.0):
        cache.rows(tmp_path, now=now)
    assert asked == [600.0, 660.0]


def test_a_missing_prometheus_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(metrics.PrometheusDown, match="monitoring stage"):
        metrics.MetricsCache().rows(tmp_path)
    with pytest.raises(metrics.PrometheusDown, match="does not answer"):
        metrics.route_metrics("http://127.0.0.1:9", 3600.0)


def test_a_stage_run_is_the_cli_in_a_child_its_output_followed_one_run_at_a_time(tmp_path: Path) -> None:
    import asyncio

    from caravan_workspace.console_web.runs import RunRefused, Runs, StageRun, follow

    root = tmp_path / "workspace"
    root.mkdir()
    (root / "tasks.py").write_text(
        "import time\nfrom invoke import task\n\n"
        "@task\ndef stage(c, selector, with_deps=False, gates_only=False):\n"
        "    print(f'stage {selector} gates_only={gates_only}', flush=True)\n"
        "    time.sleep(1.0)\n    print('last line without a newline', end='')\n    raise SystemExit(3)\n"
    )
    runs = Runs(root, tmp_path / "state")
    run = runs.start(7, "gates-only")
    with pytest.raises(RunRefused, match="still running"):
        runs.start(8, "deps")
    with pytest.raises(RunRefused, match="unknown mode"):
        Runs(root, tmp_path / "state").start(7, "fast")

    async def collect_of(run: StageRun) -> list[tuple[str, str]]:
        return [pair async for pair in follow(run, poll=0.05)]

    events = asyncio.run(asyncio.wait_for(collect_of(run), timeout=60))
    assert events == [
        ("line", "stage 7 gates_only=True"),
        ("line", "last line without a newline"),
        ("done", "failed (exit 3)"),
    ]
    assert (tmp_path / "state" / "console" / "runs" / f"{run.id}.log").is_file()
    assert runs.active() is None
    following = runs.start(8, "deps")  # the next run may start
    assert asyncio.run(asyncio.wait_for(collect_of(following), timeout=60))[0] == (
        "line",
        "stage 8 gates_only=False",
    )


def test_a_broken_environment_file_shows_its_error_and_the_others_still_render(
    repo_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    for entry in repo_root.iterdir():
        if entry.name != "deploy":
            (root / entry.name).symlink_to(entry)
    environments = root / "deploy" / "environments"
    environments.mkdir(parents=True)
    shutil.copy(repo_root / "deploy" / "environments" / "dev.toml", environments / "dev.toml")
    (environments / "broken.toml").write_text('name = "broken"\nnamespace = [\n')
    views = {v.name: v for v in environments_view(Context(root, tmp_path / "state"), "")}
    assert set(views) == {"broken", "dev"}
    assert "deploy/environments/broken.toml: not valid TOML" in views["broken"].problem
    assert views["dev"].problem == "" and {d.name for d in views["dev"].deployables} >= {"gateway", "svc-a"}
    assert all(d.nomad_job == "" for d in views["dev"].deployables)
