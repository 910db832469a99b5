"""Which build of the SimPy engine runs: its modules compiled with mypyc at install (`setup.py`), or their source.

Why a compiled engine. SimPy's own work per event is fixed; csfsim's work between events (the pathway's rules, the
station, the clinical ladder) is Python that runs for every event of every patient. mypyc compiles those unchanged,
type-hinted files to C, for about a quarter more events per second (docs/decisions.md, "A compiled engine").

The Python files stay the reference: the test suite runs them (CSFSIM_PURE=1, so coverage sees every line) and
tests/test_compiled.py runs the engine's tests again on the compiled build. A compiled module is used only if the
whole set was built from the files now beside it (`RECORD_FILE` holds their SHA-256 at build time). Otherwise (a
file edited since `make setup`, a machine with no C compiler, or CSFSIM_PURE=1) every module of the set is loaded
from its source, all or none, so compiled and interpreted engine code never mix. Both give identical results.

Only the standard library here: `setup.py` imports this file before the package's dependencies exist.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

# The engine's hot modules, compiled together (mypyc: calls between them skip Python's calling convention).
COMPILED_MODULES = ("sim.clinical", "sim.lazy_days", "sim.schedule", "sim.station", "sim.pathway")
RECORD_FILE = "_compiled_sources.json"  # {"sim/pathway.py": sha256, ...} of the files the build came from
PURE_VARIABLE = "CSFSIM_PURE"  # set to 1: run the engine's Python source even where a fresh build exists
PACKAGE_DIR = Path(__file__).resolve().parent


def source_path(module: str) -> Path:
    return PACKAGE_DIR / f"{module.rsplit('.', 1)[1]}.py"


def compiled_path(module: str) -> Path | None:
    """The extension module built for `module`, if any."""
    stem = module.rsplit(".", 1)[1]
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = PACKAGE_DIR / f"{stem}{suffix}"
        if candidate.exists():
            return candidate
    return None


def python_reason(honour_variable: bool = True) -> str | None:
    """Why the engine must run as Python (None: the compiled build is present and was built from these files).
    `honour_variable=False`: whether the compiled build could run, whatever PURE_VARIABLE says."""
    if honour_variable and os.environ.get(PURE_VARIABLE, "") not in ("", "0"):
        return f"{PURE_VARIABLE} is set"
    if any(compiled_path(module) is None for module in COMPILED_MODULES):
        return "not compiled"
    try:
        built_from = json.loads((PACKAGE_DIR / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return f"the compiled build has no readable {RECORD_FILE}"
    for module in COMPILED_MODULES:
        path = source_path(module)
        key = f"sim/{path.name}"
        if built_from.get(key) != hashlib.sha256(path.read_bytes()).hexdigest():
            return f"{key} changed since the engine was compiled"
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
    """Decide the build once, before any engine module is imported (sim/__init__.py calls this first). A stale
    compiled build is said on stderr, since the run is then slower than the user expects."""
    global BUILD
    reason = python_reason()
    if reason is None:
        BUILD = "compiled"
        return BUILD
    if not any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())
    if "changed since" in reason or "no readable" in reason:
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
