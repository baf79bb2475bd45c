"""Caravan's command line: `invoke --list` shows every task. This file only assembles them;
the logic lives in the workspace package (libs/workspace)."""

from invoke import Collection

from caravan_workspace.tasks import commons, dev, images, plan, runtime, service

ns = Collection(
    plan.plan,
    plan.stage,
    plan.up,
    plan.reset,
    plan.toolchain,
    runtime.status,
    runtime.down,
    runtime.logs,
    runtime.trace,
    service.new_service,
    dev.test,
)
ns.add_collection(commons.ns)
ns.add_collection(images.ns)
ns.configure({"run": {"echo": True}})
