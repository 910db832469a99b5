"""Which build of the SimPy engine runs: its modules compiled with mypyc at install (`setup.py`), or their source.

Why a compiled engine. SimPy's own work per event is fixed; csfsim's work between events (the pathway's rules, the
station, the clinical ladder) is Python that runs for every event of every patient. mypyc compiles those unchanged,
type-hinted files to C, for about a quarter more events per second (docs/decisions.md, "A compiled engine").

The Python files stay the reference: the test suite runs them (CSFSIM_PURE=1, so coverage sees every line) and
tests/test_compiled.py runs the engine's tests again on the compiled build and compares its tables with theirs.

A build is used only if it provably came from the files now present. At build time `setup.py` records, for this
interpreter, the SHA-256 of every source file the compiled modules were type-checked against (the five modules and
the `sim` modules they import, transitively: mypyc compiles in their types too) and of every file it produced (the
five modules' shims and the library holding their code). Anything else (a file edited since, a build that failed
half way, a library of another checkout or another Python, or CSFSIM_PURE=1) and every module of the set is loaded
from its source, all or none, so that compiled and interpreted engine code never mix. Both give identical results.

Only the standard library here: `setup.py` and the Makefile run this file before the package's dependencies exist.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import sysconfig
from pathlib import Path

# The engine's hot modules, compiled together (mypyc: calls between them skip Python's calling convention).
COMPILED_MODULES = ("sim.clinical", "sim.lazy_days", "sim.schedule", "sim.station", "sim.pathway")
GROUP = "sim_engine"  # mypyc puts the compiled code of the group in one library module, LIBRARY
LIBRARY = f"{GROUP}__mypyc"
PURE_VARIABLE = "CSFSIM_PURE"  # set to 1: run the engine's Python source even where a current build exists
PACKAGE_DIR = Path(__file__).resolve().parent


def record_name() -> str:
    """The build record of this interpreter (builds for several Pythons sit side by side, as their files do)."""
    return "_compiled" + sysconfig.get_config_var("EXT_SUFFIX").removesuffix(".so").removesuffix(".pyd") + ".json"


def source_path(module: str, package_dir: Path | None = None) -> Path:
    return (package_dir or PACKAGE_DIR) / f"{module.rsplit('.', 1)[1]}.py"


def compiled_path(module: str) -> Path | None:
    """The extension module built for `module` beside its source, if any."""
    stem = module.rsplit(".", 1)[1]
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = PACKAGE_DIR / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _sim_imports(path: Path) -> set[str]:
    """The `sim.X` modules a source file imports, wherever in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sim."))
        elif isinstance(node, ast.ImportFrom) and node.module == "sim":
            found.update(f"sim.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sim."):
            found.add(node.module)
    return found


def source_files(package_dir: Path | None = None) -> list[Path]:
    """The compiled modules' files and those of every `sim` module they import, transitively: what mypyc's types
    came from."""
    package_dir = package_dir or PACKAGE_DIR
    todo, seen = list(COMPILED_MODULES), set()
    while todo:
        module = todo.pop()
        path = source_path(module, package_dir)
        if module in seen or not path.exists():  # `from sim import engine_build`-style names that are not files
            continue
        seen.add(module)
        todo.extend(_sim_imports(path))
    return sorted(source_path(m, package_dir) for m in seen)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_hashes(package_dir: Path | None = None) -> dict[str, str]:
    return {f"sim/{p.name}": sha256_of(p) for p in source_files(package_dir)}


def library_path() -> Path | None:
    """The library module Python would load for the compiled modules (None: none on the path)."""
    spec = importlib.util.find_spec(LIBRARY)
    return Path(spec.origin) if spec is not None and spec.origin else None


def python_reason(honour_variable: bool = True) -> str | None:
    """Why the engine must run as Python (None: a complete build made from the files now present is here).
    `honour_variable=False`: whether the compiled build could run, whatever PURE_VARIABLE says."""
    if honour_variable and os.environ.get(PURE_VARIABLE, "") not in ("", "0"):
        return f"{PURE_VARIABLE} is set"
    shims = {module: compiled_path(module) for module in COMPILED_MODULES}
    if all(path is None for path in shims.values()):
        return "not compiled"
    try:
        record = json.loads((PACKAGE_DIR / record_name()).read_text())
        built_from, built = dict(record["sources"]), dict(record["outputs"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"the compiled build has no readable {record_name()}"
    if any(f"sim/{source_path(m).name}" not in built_from for m in COMPILED_MODULES):
        return f"{record_name()} does not list every compiled module"
    for name, digest in built_from.items():
        path = PACKAGE_DIR / Path(name).name
        if not path.exists() or sha256_of(path) != digest:
            return f"{name} changed since the engine was compiled"
    library = library_path()
    outputs = {**shims, LIBRARY: library}
    for name, path in outputs.items():
        if path is None or built.get(name) != sha256_of(path):
            return f"the compiled {name} is missing or is not the one built from these files"
    return None


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the engine's modules as their .py files, ahead of the extension modules beside them."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in COMPILED_MODULES:
            return importlib.util.spec_from_file_location(fullname, source_path(fullname))
        return None


BUILD = "compiled"  # what `select` chose: "compiled", or "python (<why>)"


def select() -> str:
    """Decide the build once, before any engine module is imported (sim/__init__.py calls this first). A build
    that exists but cannot be used is said on stderr, since the run is then slower than the user expects."""
    global BUILD
    reason = python_reason()
    if reason is None:
        BUILD = "compiled"
        return BUILD
    if not any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())
    if reason != "not compiled" and reason != f"{PURE_VARIABLE} is set":
        print(f"csfsim: {reason}: running the engine as Python (same results, slower); `make setup` recompiles it",
              file=sys.stderr)
    BUILD = f"python ({reason})"
    return BUILD


if __name__ == "__main__":
    # `python sim/engine_build.py`: is the compiled build current? (exit 0: yes). The Makefile asks before
    # recompiling; run as a file, not as `sim.engine_build`, so that the package and its dependencies stay unloaded.
    why = python_reason(honour_variable=False)
    print(f"csfsim engine: {'compiled' if why is None else f'python ({why})'}")
    sys.exit(0 if why is None else 1)
