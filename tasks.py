"""Caravan's command line: `invoke --list` shows every task. This file only assembles them;
the logic lives in the workspace package (libs/workspace)."""

from invoke import Collection

from caravan_workspace.tasks import commons, console, deployment, dev, images, ops, plan, runtime, service

ns = Collection(
    plan.plan,
    plan.stage,
    plan.up,
    plan.reset,
    plan.toolchain,
    runtime.status,
    runtime.down,
    runtime.logs,
    runtime.restart,
    runtime.trace,
    console.console,
    ops.alerts,
    service.new_service,
    dev.test,
    deployment.render_files,
    deployment.deploy,
    deployment.scale,
)
ns.add_collection(commons.ns)
ns.add_collection(images.ns)
ns.configure({"run": {"echo": True}})
