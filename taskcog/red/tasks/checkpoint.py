"""The ``checkpoint`` task (global, owner only): saves every job's counters.

A crash then loses at most one interval of status history. It also prunes killfeed records
older than the ledger's retention (14 days).
"""

from __future__ import annotations

from redbot.core.i18n import Translator

from .. import formatting as fmt
from ..abc import MixinMeta
from ..registry import TaskContext, TaskSpec

_ = Translator("TaskCog", __file__)


def checkpoint_spec(cog: MixinMeta) -> TaskSpec:
    async def checkpoint(ctx: TaskContext) -> str:
        saved = await cog.checkpoint()
        note = _("saved {states}").format(
            states=fmt.plural(saved, _("job state"), _("job states"))
        )
        if cog.ledger is not None:
            pruned = await cog.ledger.prune()
            if pruned:
                note += "; " + _("pruned {records}").format(
                    records=fmt.plural(pruned, _("old killfeed record"), _("old killfeed records"))
                )
        cog.notes[(ctx.task, None)] = note
        return note

    return TaskSpec(
        name="checkpoint",
        run=checkpoint,
        description=_("Saves every task's counters so restarts keep them."),
        scope="global",
        default_schedule="every 10m",
        min_interval=60,
        timeout=120,
    )
