"""Dependencies point one way: cog -> pipeline -> engine, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "taskcog"


def absolute_imports(path: Path) -> set[str]:
    """Every module ``path`` imports, with relative imports resolved to ``taskcog.…`` names."""
    package = ["taskcog", *path.relative_to(PACKAGE).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module or "")
                continue
            base = package[: len(package) - (node.level - 1)]
            names.add(".".join([*base, node.module] if node.module else base))
    return names


def imports_in(folder: str) -> dict[str, set[str]]:
    return {
        path.relative_to(PACKAGE).as_posix(): absolute_imports(path)
        for path in sorted((PACKAGE / folder).rglob("*.py"))
    }


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_engine_imports_nothing_from_red_discord_or_the_layers_above():
    bad = [
        f"{file}: {name}"
        for file, names in imports_in("engine").items()
        for name in names
        if under(name, "redbot")
        or under(name, "discord")
        or under(name, "aiohttp")
        or (under(name, "taskcog") and not under(name, "taskcog.engine"))
    ]
    assert bad == []


def test_pipeline_imports_only_itself_and_the_engine_and_never_red():
    bad = [
        f"{file}: {name}"
        for file, names in imports_in("pipeline").items()
        for name in names
        if under(name, "redbot")
        or (
            under(name, "taskcog")
            and not (under(name, "taskcog.engine") or under(name, "taskcog.pipeline"))
        )
    ]
    assert bad == []


def test_only_the_discord_sink_imports_discord_in_the_pipeline():
    bad = [
        f"{file}: {name}"
        for file, names in imports_in("pipeline").items()
        for name in names
        if under(name, "discord") and file != "pipeline/sinks/discord.py"
    ]
    assert bad == []
