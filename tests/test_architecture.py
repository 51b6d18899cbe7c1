"""The package's shape: no import cycles, and a core that does no I/O (static, from the AST)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "chat"
# Modules that must stay free of I/O: they take ``now`` and bytes, and return bytes/events.
PURE = ("chat.core", "chat.irc.message", "chat.irc.session", "chat.irc.commands",
        "chat.irc.events", "chat.irc.history", "chat.irc.caps", "chat.irc.numerics",
        "chat.http.api", "chat.http.answers", "chat.http.sessions", "chat.http.wire",
        "chat.engine.base", "chat.engine.memory", "chat.http.routes", "chat.http.inputs",
        "chat.http.cors", "chat.http.openapi", "chat.ws.session", "chat.http.metrics",
        "chat.link.model", "chat.link.units", "chat.udp.datagrams", "chat.udp.registry")
IO_MODULES = {"asyncio", "socket", "selectors", "time", "ssl", "uvloop", "subprocess"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str] | None = None) -> set[str]:
    """Every module ``path`` imports, type-only imports included, as absolute names.

    ``from pkg import name`` imports ``pkg.name`` when that is a module of ``modules``,
    else ``pkg`` itself.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from . import numerics` imports a module
                sub = f"{base}.{alias.name}"
                found.add(sub if modules is not None and sub in modules else base)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    names = set(modules)
    return {name: {m for m in imports_of(path, names) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    """No two chat modules import each other, directly or around a circle (TYPE_CHECKING too)."""
    assert cycles(graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """The checker itself sees a circle when there is one."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_does_no_io() -> None:
    """Parsers, sessions, hub, heartbeat, API and engine import no asyncio, socket or time."""
    offenders = {}
    for name, path in ((module_name(p), p) for p in PACKAGE.rglob("*.py")):
        if any(name == pure or name.startswith(pure + ".") for pure in PURE):
            bad = {m for m in imports_of(path) if m.split(".")[0] in IO_MODULES}
            if bad:
                offenders[name] = sorted(bad)
    assert offenders == {}


def test_adapters_never_import_the_assembler() -> None:
    """Only the entry points may import chat.app; adapters get the server state instead."""
    importers = {name for name, deps in graph().items() if "chat.app" in deps}
    assert importers <= {"chat.cli", "chat.workers"}
