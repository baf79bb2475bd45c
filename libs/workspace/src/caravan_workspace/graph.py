"""The dependency graph as a picture: Graphviz DOT, rendered to SVG and PNG, coloured by status."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from caravan_workspace.plan import Plan
from caravan_workspace.state import StageRecord

FILL = {
    "passed": "#b7e4c7",
    "failed": "#f4a6a6",
    "refused": "#ffe08a",
    "blocked": "#ffe08a",
    "running": "#a9d6f5",
    "not run": "#eeeeee",
}


class GraphError(Exception):
    pass


def _quote(text: str) -> str:
    """A DOT string literal; a newline in ``text`` becomes DOT's own line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def to_dot(plan: Plan, records: Mapping[int, StageRecord], links: Mapping[int, str] | None = None) -> str:
    """The plan as DOT; ``links`` (stage → URL) makes each stage's box a link (the console's)."""
    lines = [
        "digraph caravan {",
        '  rankdir=LR; node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        '  edge [color="#777777"];',
    ]
    for lane in plan.lanes:
        lines.append(f'  subgraph cluster_{lane.id} {{ label={_quote(lane.name)}; color="#bbbbbb";')
        for n in plan.lane_stages(lane.id):
            status = records.get(n, StageRecord()).status
            status = status if status in FILL else "not run"
            label = f"{n}. {plan.stages[n].name}\n{status}"
            link = ""
            if links and n in links:
                tip = f"stage {n}: {status} (click for its gates)"
                link = f', URL={_quote(links[n])}, target="_top", id="stage_{n}", tooltip={_quote(tip)}'
            lines.append(f"    s{n} [label={_quote(label)}, fillcolor={_quote(FILL[status])}{link}];")
        lines.append("  }")
    for n, stage in plan.stages.items():
        # Draw only the edges not implied by others (transitive reduction) so the picture stays legible.
        implied = set().union(*(plan.ancestors([d]) for d in stage.depends_on)) if stage.depends_on else set()
        for dep in stage.depends_on:
            if dep not in implied:
                lines.append(f"  s{dep} -> s{n};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_binary() -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise GraphError("Graphviz `dot` is not installed: install it with `sudo apt-get install graphviz`")
    return dot


def svg(dot_source: str) -> str:
    """The SVG document for ``dot_source`` (rendered in memory; the console inlines it)."""
    done = subprocess.run([_dot_binary(), "-Tsvg"], input=dot_source, capture_output=True, text=True)
    if done.returncode != 0:
        raise GraphError(f"dot failed to render svg: {(done.stderr.strip().splitlines() or ['?'])[0]}")
    return done.stdout


def render(plan: Plan, records: Mapping[int, StageRecord], out_dir: Path) -> tuple[Path, Path]:
    dot = _dot_binary()
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / "plan.dot"
    source.write_text(to_dot(plan, records), encoding="utf-8")
    outputs = []
    for fmt in ("svg", "png"):
        target = out_dir / f"plan.{fmt}"
        done = subprocess.run(
            [dot, f"-T{fmt}", str(source), "-o", str(target)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise GraphError(f"dot failed to render {fmt}: {done.stderr.strip().splitlines()[0]}")
        outputs.append(target)
    return outputs[0], outputs[1]
