"""taskcog: supervised background tasks for Red — schedules, status and control per guild."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redbot.core.bot import Red

with open(Path(__file__).parent / "info.json", encoding="utf-8") as fp:
    __red_end_user_data_statement__ = json.load(fp)["end_user_data_statement"]


async def setup(bot: Red) -> None:
    """Red's entry point: build the cog and add it. Its cog_load starts the engine."""
    from .red.cog import TaskCog

    await bot.add_cog(TaskCog(bot))
