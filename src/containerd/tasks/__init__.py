"""The lifecycle manager: create, start, wait, kill, delete, exec, pause, update containers
through their shims, with every task persisted so a new process reconnects to all of them."""
from pyrunc.containerd.tasks.manager import (CREATED, PAUSED, RUNNING, STOPPED, ExecProcess,
                                             ExitStatus, Task, TaskManager, TaskState)

__all__ = ["CREATED", "PAUSED", "RUNNING", "STOPPED", "ExecProcess", "ExitStatus", "Task",
           "TaskManager", "TaskState"]
