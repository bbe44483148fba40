"""Run the real ``redbot`` entry point against a fake Discord, without modifying Red.

Usage: ``python launch_redbot.py <redbot arguments...>`` with ``FAKEDISCORD_API_BASE`` set to the
fake's REST base (``http://127.0.0.1:<port>/api/v10``). Everything else is Red's own code path:
this is what ``/work/venv/bin/redbot`` does, plus two redirects made before Red starts.
"""

from __future__ import annotations

import os
import sys


def _redirect_to_fake() -> None:
    import discord.http
    import redbot.core.bot  # noqa: F401  (imports _events in Red's own order)

    # Route.BASE is read whenever a Route is built, so this reaches every REST call.
    discord.http.Route.BASE = os.environ["FAKEDISCORD_API_BASE"]

    # Red asks PyPI for the latest version at startup; keep the test offline and quiet by
    # answering "you are up to date" the way the real function would.
    import redbot.core._events as red_events

    async def _latest_is_installed() -> tuple[object, None]:
        return red_events.red_version_info, None

    red_events.fetch_latest_red_version_info = _latest_is_installed


def _exit_with_parent() -> None:
    """Die when the test process does: it holds our stdin open and never writes to it."""
    import threading

    def watch() -> None:
        # A raw read: a buffered one would hold stdin's lock at interpreter shutdown.
        while os.read(0, 4096):
            pass
        os._exit(70)

    threading.Thread(target=watch, name="fakediscord-parent-watch", daemon=True).start()


def prepare() -> None:
    """Both redirects, for a process that is about to run Red's own entry point.

    Also called from the ``sitecustomize`` that :func:`write_sitecustomize` writes, for a
    ``redbot`` started by another program (the README's quickstart execs it).
    """
    if os.environ.get("FAKEDISCORD_WATCH_STDIN") == "1":
        _exit_with_parent()
    _redirect_to_fake()


_SITECUSTOMIZE = """\
# Written by tests/fakediscord: point a `redbot` console script at the fake Discord.
import os
import sys

if os.path.basename(sys.argv[0]) == "redbot" and os.environ.get("FAKEDISCORD_API_BASE"):
    import importlib.util

    _spec = importlib.util.spec_from_file_location("_fakediscord_launch", {launcher!r})
    _launch = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_launch)
    _launch.prepare()
"""


def write_sitecustomize(folder: str | os.PathLike[str]) -> str:
    """Write a ``sitecustomize.py`` into ``folder`` (put it on ``PYTHONPATH``); return its path.

    Only a process whose program is ``redbot`` is redirected; others (``redbot-setup``, the
    script that execs redbot) start untouched.
    """
    path = os.path.join(os.fspath(folder), "sitecustomize.py")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(_SITECUSTOMIZE.format(launcher=os.path.abspath(__file__)))
    return path


def main() -> None:
    # Running this file puts its folder first on sys.path; Red must not import from here.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    prepare()
    from redbot.__main__ import main as redbot_main

    sys.argv[0] = "redbot"
    sys.exit(redbot_main())


if __name__ == "__main__":
    main()
