"""Install-time build of the SimPy engine: its hot modules compiled to C with mypyc (docs/decisions.md, "A compiled
engine"). Everything else about the package is in pyproject.toml.

The compiled modules are built from the same type-hinted Python files, which stay the reference: where compiling
is impossible (no C compiler, a type error after an edit, CSFSIM_NO_COMPILE=1) the install goes on without it and
csfsim runs those files as Python, with the same results, about a fifth slower. A build is all or nothing: it
records what it was made from and what it made only once every file is built (`sim/engine_build.py` checks that
record before using the build).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "sim"))
import engine_build  # noqa: E402  (sim/engine_build.py: standard library only, loaded as a file)

sys.path.pop(0)

# Commands that build files; pip also runs this file to read metadata, which must not pay for mypy (~7 s).
BUILD_COMMANDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install"}
SOURCES_BEFORE: dict[str, str] = {}  # the sources as mypy read them


def compiled_extensions() -> list:
    """mypyc's extensions for the engine's modules, or none (said on the console) if they cannot be made here."""
    if not BUILD_COMMANDS & set(sys.argv[1:]):
        return []
    if os.environ.get("CSFSIM_NO_COMPILE"):
        print("csfsim: CSFSIM_NO_COMPILE is set: the engine runs as Python")
        return []
    SOURCES_BEFORE.update(engine_build.source_hashes(ROOT / "sim"))
    paths = [f"sim/{engine_build.source_path(m).name}" for m in engine_build.COMPILED_MODULES]
    try:
        from mypyc.build import mypycify

        extensions = mypycify(paths, opt_level="3", group_name=engine_build.GROUP)
    except (Exception, SystemExit) as error:  # mypy reports type errors by exiting
        print(f"csfsim: the engine could not be compiled ({error!r}): it runs as Python")
        return []
    for extension in extensions:
        extension.optional = True  # a failing C compiler leaves the Python engine, not a failed install
    return extensions


class BuildEngine(build_ext):
    """build_ext, all or nothing: the previous build's files and record go first; the record is written only when
    every file was built from sources that did not change meanwhile."""

    def run(self) -> None:
        outputs = {ext.name: Path(self.get_ext_fullpath(ext.name)) for ext in self.extensions}
        if not outputs:
            return
        record = Path(self.get_ext_fullpath(engine_build.COMPILED_MODULES[0])).parent / engine_build.record_name()
        for path in (record, *outputs.values()):
            path.unlink(missing_ok=True)
        super().run()
        missing = sorted(name for name, path in outputs.items() if not path.exists())
        changed = engine_build.source_hashes(ROOT / "sim") != SOURCES_BEFORE
        if missing or changed:
            for path in outputs.values():
                path.unlink(missing_ok=True)
            why = f"{', '.join(missing)} failed to build" if missing else "a source file changed during the build"
            print(f"csfsim: the engine was not compiled ({why}): it runs as Python")
            return
        built = {name: engine_build.sha256_of(path) for name, path in outputs.items()}
        record.write_text(json.dumps({"sources": SOURCES_BEFORE, "outputs": built}, indent=1, sort_keys=True) + "\n")


setup(ext_modules=compiled_extensions(), cmdclass={"build_ext": BuildEngine})
