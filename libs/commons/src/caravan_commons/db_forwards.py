"""``python -m caravan_commons.db_forwards APP [APP ...]``: piccolo's ``migrations forwards`` for
several apps in ONE process (each child process costs an interpreter start and piccolo's imports:
seconds on a busy machine). Reads ``PICCOLO_CONF`` like piccolo's CLI; used by
:func:`caravan_commons.db.apply_migrations`. Exit 1 with ``migrations of 'APP' failed: …`` on stderr."""

from __future__ import annotations

import asyncio
import sys

from piccolo.apps.migrations.commands.forwards import run_forwards


async def forwards(app_names: list[str]) -> int:
    for app in app_names:
        print(f"== {app}", flush=True)
        result = await run_forwards(app)
        if not result.success:
            print(f"migrations of {app!r} failed: {result.message}", file=sys.stderr)
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    app_names = sys.argv[1:] if argv is None else argv
    if not app_names:
        print("usage: python -m caravan_commons.db_forwards APP [APP ...]", file=sys.stderr)
        return 2
    return asyncio.run(forwards(app_names))


if __name__ == "__main__":
    sys.exit(main())
