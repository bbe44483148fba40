"""The cog's side of deferral under load: the owner's lag threshold, read into the engine's
:class:`~taskcog.engine.deferral.Deferral`, and the line ``[p]tasks pool`` shows about it."""

from __future__ import annotations

from typing import Any

from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import humanize_number

from ..engine.deferral import DEFAULT_WINDOW, MIN_SAMPLES, Deferral

_ = Translator("TaskCog", __file__)


def threshold_of(settings: Any) -> float | None:
    """The owner's threshold in seconds (``lag_threshold_ms``; None = deferral off)."""
    ms = settings.globals.get("lag_threshold_ms", 100)
    return None if ms is None else float(ms) / 1000.0


def deferral_for(cog: Any) -> Deferral:
    """Low-priority runs wait while the p99 lag of the last 10 s is over the threshold (and
    the monitor took enough samples in those 10 s for a p99 to mean something)."""

    def lag() -> float | None:
        stats = cog.lag.stats(window=DEFAULT_WINDOW)
        return stats.p99 if stats.samples >= MIN_SAMPLES else None

    return Deferral(lag, threshold_of(cog.settings))


def deferral_line(supervisor: Any) -> str:
    """For ``[p]tasks pool``: how many low-priority runs were deferred, and the rule."""
    deferral = supervisor.deferral if supervisor is not None else None
    if deferral is None:
        return ""
    return "\n" + _("Deferred low-priority runs: {n} so far, {now} waiting now ({rule}).").format(
        n=humanize_number(deferral.count),
        now=humanize_number(supervisor.deferred_now()),
        rule=deferral.describe(),
    )
