"""`python -m svc_b`: serve svc-b on the configured (loopback) address.

Settings are read once (a bad variable prints one line and exits 2), logs are JSON lines, and on
SIGTERM in-flight requests drain before the process exits (caravan_commons.server).
"""

from __future__ import annotations

from caravan_commons.server import run_service
from svc_b.bootstrap import build_app
from svc_b.config import Settings


def main() -> None:
    run_service(build_app, Settings)


if __name__ == "__main__":
    main()
