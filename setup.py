"""Install-time build of the SimPy engine: its hot modules compiled to C with mypyc (docs/decisions.md, "A compiled
engine"). Everything else about the package is in pyproject.toml.

The compiled modules are built from the same type-hinted Python files, which stay the reference: where compiling
is impossible (no C compiler, a type error after an edit, CSFSIM_NO_COMPILE=1) the install goes on without it and
csfsim runs those files as Python, with the same results, about a fifth slower. `sim/engine_build.py` checks which
sources a build came from and never mixes the two.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "sim"))
from engine_build import COMPILED_MODULES, RECORD_FILE, compiled_path  # noqa: E402  (standard library only)

sys.path.pop(0)


def compiled_extensions() -> list:
    """mypyc's extensions for COMPILED_MODULES, or none (said on the console) if they cannot be made here."""
    record = ROOT / "sim" / RECORD_FILE
    record.unlink(missing_ok=True)  # a build that fails must not leave an earlier one looking current
    for module in COMPILED_MODULES:
        old = compiled_path(module)
        if old is not None:
            old.unlink()
    if os.environ.get("CSFSIM_NO_COMPILE"):
        print("csfsim: CSFSIM_NO_COMPILE is set: the engine runs as Python")
        return []
    paths = [f"sim/{name.split('.')[1]}.py" for name in COMPILED_MODULES]
    try:
        from mypyc.build import mypycify

        extensions = mypycify(paths, opt_level="3", group_name="sim_engine")
    except (Exception, SystemExit) as error:  # mypy reports type errors by exiting
        print(f"csfsim: the engine could not be compiled ({error!r}): it runs as Python")
        return []
    for extension in extensions:
        extension.optional = True  # a failing C compiler leaves the Python engine, not a failed install
    sources = {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in paths}
    record.write_text(json.dumps(sources, indent=1, sort_keys=True) + "\n")
    return extensions


setup(ext_modules=compiled_extensions())
