"""Runtimes that run the workspace's processes; the local one is supervisord (see supervisor)."""

from caravan_workspace.runtime.supervisor import (
    ProgramStatus,
    Supervisor,
    SupervisorError,
    UpdateResult,
    free_port,
    port_in_use,
)

__all__ = ["ProgramStatus", "Supervisor", "SupervisorError", "UpdateResult", "free_port", "port_in_use"]
