"""The cog's commands, one module per command group, assembled into one mixin for the cog."""

from .server import ServerCommands
from .tasks import TasksCommands
from .taskset import TasksetCommands


class TaskCommands(ServerCommands, TasksetCommands, TasksCommands):
    """``[p]tasks``, ``[p]taskset`` and ``[p]taskset server``, for the cog to inherit."""


__all__ = ["TaskCommands"]
