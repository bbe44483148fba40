"""The buttons and menus of the stats commands: each answers only the member who asked, and
stops answering (its controls disabled) when it times out.

- :class:`ConfirmView`: Confirm / Cancel, for ``[p]taskset server wipe``;
- :class:`PlayerPicker`: a select menu when several players match ``[p]killfeed stats``;
- :class:`FlagReview`: approve or reject implausible kills one at a time (``[p]killfeed flags``);
- :class:`HistoryOffer`: the "Import history" button after ``[p]taskset server trust``.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Sequence

import discord
from redbot.core.i18n import Translator

log = logging.getLogger("red.taskcog.views")
_ = Translator("TaskCog", __file__)

NO_PINGS = discord.AllowedMentions.none()
TIMEOUT = 120.0


class OwnedView(discord.ui.View):
    """A view only ``author_id`` may use; on timeout its controls are disabled in place."""

    def __init__(self, author_id: int, *, timeout: float = TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.author_id = author_id
        self.message: discord.Message | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id == self.author_id:
            return True
        await interaction.response.send_message(
            _("Only the member who ran the command can use these controls."), ephemeral=True
        )
        return False

    async def on_timeout(self) -> None:
        for item in self.children:
            if hasattr(item, "disabled"):
                item.disabled = True  # type: ignore[attr-defined]
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                log.debug("could not disable a timed-out view", exc_info=True)


class ConfirmView(OwnedView):
    """Confirm or Cancel; ``on_confirm()`` returns the text that replaces the question."""

    def __init__(
        self, author_id: int, on_confirm: Callable[[], Awaitable[str]], *, label: str
    ) -> None:
        super().__init__(author_id)
        self._on_confirm = on_confirm
        self.confirm.label = label
        self.result: bool | None = None

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.result = True
        self.stop()
        await interaction.response.edit_message(view=None)
        text = await self._on_confirm()
        await interaction.edit_original_response(content=text, view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.result = False
        self.stop()
        await interaction.response.edit_message(
            content=_("Cancelled: nothing was changed."), view=None
        )


class PlayerPicker(OwnedView):
    """A select menu of matching players; choosing one shows their stats in place."""

    def __init__(
        self,
        author_id: int,
        options: Sequence[tuple[str, str, str]],  # (value, label, description)
        show: Callable[[str], Awaitable[discord.Embed | None]],
    ) -> None:
        super().__init__(author_id)
        self._show = show
        select: discord.ui.Select = discord.ui.Select(
            placeholder=_("Choose a player"),
            options=[
                discord.SelectOption(value=value, label=label[:100], description=desc[:100])
                for value, label, desc in options[:25]
            ],
        )
        select.callback = self._chosen  # type: ignore[method-assign]
        self.select = select
        self.add_item(select)

    async def _chosen(self, interaction: discord.Interaction) -> None:
        self.stop()
        embed = await self._show(self.select.values[0])
        if embed is None:
            await interaction.response.edit_message(
                content=_("That player has no stats any more."), view=None
            )
            return
        await interaction.response.edit_message(content=None, embed=embed, view=None)


class FlagReview(OwnedView):
    """Flagged kills one at a time: Approve (it counts toward records), Reject, or Skip."""

    def __init__(
        self,
        author_id: int,
        flags: list[Any],
        render: Callable[[Any, int, int], discord.Embed],
        review: Callable[[Any, bool], Awaitable[bool]],
    ) -> None:
        super().__init__(author_id, timeout=300.0)
        self.flags = flags
        self.index = 0
        self._render = render
        self._review = review
        self.approved = 0
        self.rejected = 0

    def current(self) -> discord.Embed:
        return self._render(self.flags[self.index], self.index + 1, len(self.flags))

    async def _next(self, interaction: discord.Interaction) -> None:
        self.index += 1
        if self.index >= len(self.flags):
            self.stop()
            await interaction.response.edit_message(
                content=_(
                    "Reviewed every flagged kill: {approved} approved, {rejected} rejected."
                ).format(approved=self.approved, rejected=self.rejected),
                embed=None,
                view=None,
            )
            return
        await interaction.response.edit_message(embed=self.current(), view=self)

    @discord.ui.button(label="Approve", style=discord.ButtonStyle.success)
    async def approve(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if await self._review(self.flags[self.index], True):
            self.approved += 1
        await self._next(interaction)

    @discord.ui.button(label="Reject", style=discord.ButtonStyle.danger)
    async def reject(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if await self._review(self.flags[self.index], False):
            self.rejected += 1
        await self._next(interaction)

    @discord.ui.button(label="Skip", style=discord.ButtonStyle.secondary)
    async def skip(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._next(interaction)


class HistoryOffer(OwnedView):
    """ "Import history" for one game server; pressing it runs the ``history`` task there."""

    def __init__(self, author_id: int, start: Callable[[discord.Interaction], Awaitable[None]]):
        super().__init__(author_id, timeout=600.0)
        self._start = start

    @discord.ui.button(label="Import history", style=discord.ButtonStyle.primary)
    async def run(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(view=None)
        await self._start(interaction)
