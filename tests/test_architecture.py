"""The layout's rules, checked on the source itself: dependencies point one way
(red -> pipeline -> engine), no import circle, and no module over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "taskcog"
MAX_LINES = 400


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


def test_red_and_discord_are_imported_only_in_the_red_layer():
    allowed = ("red/", "pipeline/sinks/discord.py")
    bad = [
        f"{file}: {name}"
        for file, names in imports_in(".").items()
        for name in names
        if (under(name, "redbot") or under(name, "discord"))
        and not file.startswith(allowed)
        and not (file == "__init__.py" and under(name, "redbot.core.bot"))  # a type hint
    ]
    assert bad == []


def test_no_module_is_over_400_lines():
    long = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def module_name(path: Path) -> str:
    parts = ["taskcog", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the taskcog modules it imports, counting every import statement (also those
    under ``TYPE_CHECKING`` or inside functions: a circle hidden there is still a circle)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                for alias in node.names:
                    submodule = f"{target}.{alias.name}"
                    edges.add(submodule if submodule in modules else target)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_anywhere_in_taskcog():
    graph = import_graph()
    assert "taskcog.red.cog" in graph and graph["taskcog.red.cog"]  # the graph is really built
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
