"""The cog's commands, one module per command group, assembled into one mixin for the cog."""

from .alerts import AlertCommands
from .announce import AnnounceCommands
from .backend import BackendCommands
from .custom import CustomCommands
from .killfeed import KillfeedCommands
from .owner import OwnerCommands
from .server import ServerCommands
from .statsadmin import StatsAdminCommands
from .tasks import TasksCommands
from .taskset import TasksetCommands
from .timezone import TimezoneCommands


class TaskCommands(
    OwnerCommands,
    CustomCommands,
    StatsAdminCommands,
    AlertCommands,
    AnnounceCommands,
    TimezoneCommands,
    ServerCommands,
    TasksetCommands,
    TasksCommands,
    KillfeedCommands,
    BackendCommands,
):
    """``[p]tasks``, ``[p]taskset`` (with ``server``, ``alerts`` and ``timezone``), for the cog
    to inherit."""


__all__ = ["TaskCommands"]
