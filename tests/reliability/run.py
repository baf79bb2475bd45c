"""The reliability run by hand: bring a whole system up in a temporary workspace, run the chaos
load against it, print the counts, tear it down.

    .nox/integration/bin/python tests/reliability/run.py [--seconds 60] [--restart-chaos | --graceful]
        [--postgres DSN]

Exits 1 when anything was lost, doubled or left stuck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import chaos  # noqa: E402
from system import bring_up, tear_down  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--kill-every", type=float, default=None, help="seconds (default 7; 5 with --restart-chaos)"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="orders per second (default: half the capacity)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--graceful", action="store_true", help="SIGTERM instead of SIGKILL")
    mode.add_argument(
        "--restart-chaos",
        action="store_true",
        help="kill the gateway too, every 5 s unless --kill-every says otherwise",
    )
    parser.add_argument(
        "--postgres", metavar="DSN", default=None, help="a Postgres server (role with CREATEDB)"
    )
    args = parser.parse_args()
    if args.kill_every is None:
        args.kill_every = 5.0 if args.restart_chaos else 7.0
    if args.seconds <= 0 or args.kill_every <= 0:
        parser.error("--seconds and --kill-every must be positive")
    with tempfile.TemporaryDirectory(prefix="caravan-reliability-") as tmp:
        state = Path(tmp) / "state"
        try:
            print("bringing the system up…", flush=True)
            system = bring_up(state, args.postgres)
            report = asyncio.run(chaos.run(
                system, seconds=args.seconds, kill_every=args.kill_every, rate=args.rate,
                sig=signal.SIGTERM if args.graceful else signal.SIGKILL,
                targets=chaos.RESTART_TARGETS if args.restart_chaos else chaos.SERVICES,
            ))  # fmt: skip
        finally:
            tear_down(state, args.postgres)
    print(report.table())
    print(json.dumps(chaos.summary(report), indent=2))
    return 0 if report.verdict is not None and report.verdict.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
