"""The package's layers import only downward, with no cycles (function-level imports included), and the fast
engine needs no SimPy: what the README's layout section promises, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sim"
# Lowest first, in the order of the README's layout; a module may import its own sub-package and those of a lower
# rank.
RANKS = {"sim.errors": 0, "sim.config": 1, "sim.economics": 1.5, "sim.model": 2, "sim.engines": 3, "sim.io": 4,
         "sim.analysis": 4, "sim.figures": 5, "sim.runs": 6, "sim.report": 7, "sim.app": 7.5, "sim.cli": 8,
         "sim.__main__": 9, "sim": 9}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    """The sub-package (or top-level module) a module belongs to."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def imports(module: str) -> set[str]:
    """The sim modules this module imports anywhere in its body (`from sim.x import y` counts y if a module)."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sim"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sim") and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES)
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_is_in_a_layer():
    assert not [m for m in MODULES if layer(m) not in RANKS]


def test_layers_import_only_downward():
    upward = [f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps
              if m != "sim" and layer(d) != layer(m) and RANKS[layer(d)] >= RANKS[layer(m)]]
    assert not upward


def test_no_import_cycles():
    cycles = []
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(GRAPH[m]):
            if d in ("sim", layer(d)) and d != m and MODULES[d].name == "__init__.py":
                continue  # a package's docstring-only __init__
            if state.get(d) == 1:
                cycles.append(" -> ".join([*path[path.index(d):], d]))
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    assert not cycles


def test_the_fast_engine_needs_no_simpy():
    seen, todo = set(), ["sim.engines.fast_engine"]
    while todo:
        m = todo.pop()
        if m in seen or m == "sim":
            continue
        seen.add(m)
        todo.extend(GRAPH[m])
    with_simpy = sorted(m for m in seen if "simpy" in {a.split(".")[0] for a in _third_party(m)})
    assert not with_simpy


def _third_party(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_no_engine_reads_a_clinical_parameter():
    """A clinical parameter is read in the model layer (sim.model) and nowhere in an engine: an engine reads it
    through the model's objects (rules, delays, the ladder table, the clinical functions)."""
    from dataclasses import fields

    from sim.config.parameters import CenterProfile, Clinical, Population, ReferralPolicy, VolumeOutcome

    names = {f.name for cls in (CenterProfile, Clinical, Population, ReferralPolicy, VolumeOutcome)
             for f in fields(cls)}
    model_objects = {"rules", "delays", "tab", "table", "cl"}
    read = []
    for path in sorted((PACKAGE / "engines").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in names:
                base = node.value
                owner = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
                if owner not in model_objects:
                    read.append(f"{path.name}:{node.lineno} .{node.attr}")
    assert not read


def test_the_public_api_resolves_every_name_it_lists():
    import pytest

    import sim

    assert all(callable(getattr(sim, name)) for name in sim.__all__)
    with pytest.raises(AttributeError, match="no attribute 'pathway'"):
        _ = sim.pathway
