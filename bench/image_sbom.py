"""Image SBOM benchmark: what `invoke images.sbom` adds to the docker session, which runs it after
its tests, when the images are built.

    python bench/image_sbom.py

Baselines, measured in the same run: `invoke images` with nothing changed (the step the session's
SBOM step repeats before reading the images), and per image a bare container of it (``python -c
pass`` with the same isolation the probe uses) — the engine's fixed cost of reading inside an image.
Then, per image, reading it and rendering its SBOM (inspect, probe, build, schema check), and the
whole `invoke images.sbom` as the session runs it. Needs a Docker engine and the workspace index
(commons published). Prints a table and writes bench/results/image_sbom.json.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from caravan_workspace import paths
from caravan_workspace.images import docker
from caravan_workspace.images.build import build_all
from caravan_workspace.images.sbom import ISOLATION, read_image
from caravan_workspace.registry import Context

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "image_sbom.json"


def timed_invoke(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, check=True, capture_output=True)
    return time.monotonic() - started


def bare_container(tag: str) -> float:
    started = time.monotonic()
    docker.run(["run", *ISOLATION, "--entrypoint", "python", tag, "-c", "pass"])
    return time.monotonic() - started


def main() -> None:
    ctx = Context(root=ROOT, state_dir=paths.state_dir(ROOT))
    images = build_all(ctx)  # everything current first
    read_image("warm-up", images[0].tag)  # the validator's schemas loaded once, as in one invoke
    rows: list[tuple[str, float, float]] = []
    noop = timed_invoke("images")
    rows.append(("baseline: invoke images, nothing changed", noop, 1.0))
    per_image = {}
    for image in images:
        bare = bare_container(image.tag)
        started = time.monotonic()
        document = read_image(image.deployable.name, image.tag)
        seconds = time.monotonic() - started
        per_image[image.deployable.name] = {
            "bare_container_s": round(bare, 2),
            "sbom_s": round(seconds, 2),
            "python": document.python,
            "debian": document.debian,
            "bytes": len(document.text),
        }
        rows.append((f"  baseline: bare container of {image.deployable.name}", bare, bare / noop))
        rows.append((f"  SBOM of {image.deployable.name} ({document.python} py, {document.debian} deb)",
                     seconds, seconds / noop))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="caravan-bench-sbom-") as folder:
        whole = timed_invoke("images.sbom", "--out", folder)
    rows.append((f"invoke images.sbom ({len(images)} images, as the session runs it)", whole, whole / noop))
    print(f"{'measure':<58} {'seconds':>8} {'× baseline':>11}")
    for name, seconds, ratio in rows:
        print(f"{name:<58} {seconds:8.2f} {ratio:11.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, shared 2 cores",
                "seconds": {name.strip(): round(seconds, 2) for name, seconds, _ in rows},
                "images": per_image,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
