"""Set up (once) and start a Red bot with taskcog loaded, on Red's JSON storage.

    RED_TOKEN=... python docs/quickstart.py [--instance taskcog] [--data-path DIR] [--prefix !]

The token is read by Red itself from the ``RED_TOKEN`` environment variable. This script only
does what a person would otherwise do by hand:

1. ``redbot-setup --no-prompt --instance-name NAME --data-path DIR --backend json`` if the
   instance does not exist yet;
2. mark the instance as already started once on this Python, because a brand-new Red instance
   ignores ``--load-cogs`` on its very first start (it stops to check the Python version);
3. ``redbot NAME --no-prompt --prefix ! --cog-path <this checkout> --load-cogs taskcog``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    candidate = BIN / name
    return str(candidate) if candidate.exists() else name


def ensure_instance(name: str, data_path: Path) -> None:
    from redbot.core import data_manager

    if name in data_manager.load_existing_config():
        return
    data_path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            _tool("redbot-setup"),
            "--no-prompt",
            "--instance-name",
            name,
            "--data-path",
            str(data_path),
            "--backend",
            "json",
        ],
        check=True,
    )


async def _prime(name: str) -> None:
    from redbot.core import _drivers, data_manager
    from redbot.core.config import Config

    data_manager.load_basic_configuration(name)
    await _drivers.get_driver_class().initialize(**data_manager.storage_details())
    try:
        core = Config.get_core_conf(force_registration=False)
        # Only Red's own startup registers this value; register it to be allowed to set it.
        core.register_global(last_system_info__python_version=[3, 7])
        await core.last_system_info.python_version.set(list(sys.version_info[:2]))
    finally:
        await _drivers.get_driver_class().teardown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", default="taskcog")
    parser.add_argument("--data-path", type=Path, default=Path.home() / "taskcog-red")
    parser.add_argument("--prefix", default="!")
    parser.add_argument("extra", nargs="*", help="more redbot arguments (after --)")
    args = parser.parse_args(argv)
    if not os.environ.get("RED_TOKEN"):
        print("Set RED_TOKEN to your bot's token first.", file=sys.stderr)
        return 2
    ensure_instance(args.instance, args.data_path)
    asyncio.run(_prime(args.instance))
    command = [
        _tool("redbot"),
        args.instance,
        "--no-prompt",
        "--prefix",
        args.prefix,
        "--cog-path",
        str(CHECKOUT),
        "--load-cogs",
        "taskcog",
        *args.extra,
    ]
    os.execv(command[0], command) if os.path.isabs(command[0]) else os.execvp(command[0], command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
