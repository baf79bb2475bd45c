"""Image build benchmark: what `invoke images` costs when nothing changed, after a commit (the
build stages cached, the runtime stages redone for the new revision label), and the sizes.

    python bench/images.py

Baseline, measured in the same run: a trivial two-stage build on the same base image (copy one
file from the first stage into the second) — the engine's fixed cost per build on this machine.
Needs a Docker engine and the workspace index (commons published). Prints a table and writes
bench/results/images.json.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from caravan_workspace import paths
from caravan_workspace.images import docker
from caravan_workspace.images.build import build_all, build_image, build_settings, deployables
from caravan_workspace.registry import Context

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "images.json"
PREFIX = f"caravan-bench-{int(time.time())}"


def baseline(base: str) -> float:
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as folder:
        (Path(folder) / "hello").write_text(PREFIX)
        (Path(folder) / "Dockerfile").write_text(
            f"FROM {base} AS build\nCOPY hello /hello\nFROM {base}\nCOPY --from=build /hello /hello\n"
        )
        started = time.monotonic()
        docker.run(["build", "--quiet", "--tag", f"{PREFIX}/baseline:1", folder])
        seconds = time.monotonic() - started
    docker.run(["image", "rm", "--force", f"{PREFIX}/baseline:1"], check=False)
    return seconds


def main() -> None:
    ctx = Context(root=ROOT, state_dir=paths.state_dir(ROOT))
    build_all(ctx)  # everything current first
    settings = build_settings(ctx)
    base_seconds = baseline(settings.base_image)
    started = time.monotonic()
    images = build_all(ctx)
    noop = time.monotonic() - started
    svc_a = next(d for d in deployables(ROOT) if d.name == "svc-a")
    # A new revision (as after a commit): the build stage is cached, the runtime stage is redone.
    bench_revision = f"{int(time.time()):x}".ljust(40, "0")
    started = time.monotonic()
    rebuilt = build_image(ROOT, svc_a, dataclasses.replace(settings, revision=bench_revision))
    relabel = time.monotonic() - started
    docker.run(["image", "rm", rebuilt.tag], check=False)
    rows = [
        ("baseline: trivial two-stage build", base_seconds, 1.0),
        ("invoke images, nothing changed (4 images)", noop, noop / base_seconds),
        ("one image after a commit (build stage cached)", relabel, relabel / base_seconds),
    ]
    print(f"{'measure':<48} {'seconds':>8} {'× baseline':>11}")
    for name, seconds, ratio in rows:
        print(f"{name:<48} {seconds:8.1f} {ratio:11.1f}")
    for image in images:
        print(f"{image.tag:<48} {image.size / 1e6:7.1f} MB")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, shared 2 cores",
                "base_image": settings.base_image,
                "seconds": {name: round(seconds, 2) for name, seconds, _ in rows},
                "sizes_mb": {i.deployable.name: round(i.size / 1e6, 1) for i in images},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
