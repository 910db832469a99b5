"""The run-folder protocol every command that writes results follows: work in `OUT.partial/` under an exclusive
lock, then publish it as `OUT` in two renames, replacing only what csfsim itself wrote there, and only when asked.

Why. Publishing used to rename away and remove whatever folder `--out` named: a user's notes, even the scenario
file, were lost. Two runs into one `--out` wrote the same temporary files and published corrupt or mixed tables.
Now a folder is replaced only if its manifest says it is a finished csfsim output of the same kind, it holds
nothing csfsim did not write, and the caller passed `overwrite`; and `OUT.partial/` is locked (flock, released by
the kernel when the process dies, so a killed run never leaves a stale lock) from the first write to the publish.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError

# The manifest key that marks each kind of finished output folder (written by the command that made it).
KINDS = {"run": "csfsim_run", "compare": "csfsim_compare", "sweep": "csfsim_sweep", "psa": "csfsim_psa",
         "sensitivity": "csfsim_sensitivity", "warmup": "csfsim_warmup"}
# What `csfsim report` adds to a finished folder, besides what the manifest lists.
REPORT_OUTPUTS = ("report.html", "figures")
LOCK_FILE = ".csfsim-lock.json"  # inside OUT.partial: who holds it (the lock itself is on the folder)
MAX_NAME = 200  # characters of the folder's name: OUT.partial and the temporary names must fit in 255 bytes


def _cli_error(out: Path | str, expected: str) -> ScenarioError:
    return ScenarioError("(command line)", "--out", str(out), expected)


def check_out_path(out: str | os.PathLike[str]) -> Path:
    """`out` as an absolute path csfsim can publish a folder at, or a ScenarioError saying why not."""
    given = Path(out)
    if len(given.name.encode()) > MAX_NAME:
        raise _cli_error(out, f"a folder name of at most {MAX_NAME} bytes")
    if given.is_symlink() and not given.exists():
        raise _cli_error(out, "a folder path (this is a symbolic link to nothing)")
    try:
        path = given.resolve(strict=False)
    except (RuntimeError, OSError):  # a symbolic link loop
        raise _cli_error(out, "a folder path (this is a loop of symbolic links)") from None
    if path.parent == path or not path.name:
        raise _cli_error(out, "a folder of its own for the results (not the file system's root)")
    try:
        if Path.cwd().resolve().is_relative_to(path):
            raise _cli_error(out, "a new folder for the results (not the current folder or one above it)")
    except OSError:  # the current folder was removed: nothing to protect
        pass
    if len(path.name.encode()) > MAX_NAME:  # through a symbolic link
        raise _cli_error(out, f"a folder name of at most {MAX_NAME} bytes")
    if path.exists() and not path.is_dir():
        raise _cli_error(out, "a folder path (a file is in the way)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _cli_error(out, f"a folder that can be created ({err.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise _cli_error(out, "a folder in a writable location")
    return path


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def kind_of(folder: Path) -> str | None:
    """The kind of finished csfsim output `folder` holds (a key of KINDS), or None."""
    manifest = _manifest(folder)
    if manifest is None:
        return None
    return next((kind for kind, key in KINDS.items() if manifest.get(key) is True), None)


def foreign_entries(folder: Path) -> list[str]:
    """Entries of a finished output folder that csfsim did not write: all of them where it has no manifest."""
    manifest = _manifest(folder) or {}
    ours = {"manifest.json", *REPORT_OUTPUTS, *manifest.get("files", []), *manifest.get("folders", [])}
    # Scenario folders of a comparison made before manifests listed every entry.
    ours.update(s.get("folder") for s in manifest.get("scenarios", []) if isinstance(s, dict))
    return sorted(p.name for p in folder.iterdir() if p.name not in ours and not _temporary(p.name))


def _temporary(name: str) -> bool:
    """A temporary file of csfsim's atomic writes (`.NAME.tmp-PID`), left by a process that was killed."""
    return name.startswith(".") and ".tmp" in name


def check_replaceable(out: Path, kind: str, overwrite: bool, given: str | None = None) -> None:
    """Refuse (ScenarioError) unless publishing at `out` loses nothing: `out` is absent or empty, or a finished
    csfsim output of `kind` holding only csfsim's files, and `overwrite` was asked for. `given`: `out` as the
    user wrote it, for the message."""
    if not out.is_dir() or not any(out.iterdir()):
        return
    shown_out = given if given is not None else str(out)
    found = kind_of(out)
    if found is None:
        names = foreign_entries(out)
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise _cli_error(shown_out, f"a new or empty folder (this one holds files csfsim did not write: {shown}); "
                              "choose another --out")
    if found != kind:
        raise _cli_error(shown_out, f"a folder for a csfsim {kind} (this one holds a finished csfsim {found}); "
                              "choose another --out")
    foreign = foreign_entries(out)
    if foreign:
        raise _cli_error(shown_out, f"a folder csfsim wrote alone (this finished {kind} also holds {foreign[0]}, which "
                              "csfsim did not write); move it or choose another --out")
    if not overwrite:
        raise _cli_error(shown_out, f"a new folder (this one holds a finished csfsim {kind}); pass --overwrite to "
                              "replace it, or choose another --out")


class RunFolder:
    """One command's output folder: `open()` locks and returns `OUT.partial/` to write into, `publish()` puts it
    in place as `OUT`, `close()` releases the lock (a `with` block does, and on an error either keeps the
    partial folder for a resume or removes it, as `keep_on_error` says).

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> with RunFolder(root / "out", "warmup") as folder:
    ...     _ = (folder.open() / "table.csv").write_text("x\\n")
    ...     folder.publish({"csfsim_warmup": True})
    >>> sorted(p.name for p in (root / "out").iterdir())
    ['manifest.json', 'table.csv']
    """

    def __init__(self, out: str | os.PathLike[str], kind: str, overwrite: bool = False,
                 keep_on_error: bool = False) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown output kind {kind!r}")
        self.given = str(out)
        self.out = check_out_path(out)
        self.kind = kind
        self.overwrite = overwrite
        self.keep_on_error = keep_on_error
        check_replaceable(self.out, kind, overwrite, self.given)
        self.work = self.out.with_name(self.out.name + ".partial")
        self._fd: int | None = None
        self.published = False
        self.resumed_work = False  # open(resume=True) found earlier work: never removed on an error

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            # A bad input found after the folder was made (a refused engine, an unreachable scheduler) leaves
            # nothing behind; an interrupted run keeps its work for --resume where the command has one.
            if exc_type is not None and self._fd is not None and not self.published and (
                    not self.keep_on_error or issubclass(exc_type, ScenarioError)) and not self.resumed_work:
                shutil.rmtree(self.work, ignore_errors=True)
        finally:
            self.close()

    def open(self, resume: bool = False) -> Path:
        """Lock `OUT.partial/` (made if missing) and return it; emptied first unless `resume`."""
        if self.work.is_symlink() or (self.work.exists() and not self.work.is_dir()):
            raise _cli_error(self.given, f"a folder path ({self.work.name} is in the way and is not a folder "
                                         "csfsim made)")
        for _ in range(10):
            try:
                self.work.mkdir(exist_ok=True)
                fd = os.open(self.work, os.O_RDONLY | os.O_DIRECTORY)
            except OSError as err:
                raise _cli_error(self.given, f"a folder that can be created ({err.strerror})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _cli_error(self.given, f"a folder no other run is writing ({self._holder()}); wait for it "
                                             "to finish or choose another --out") from None
            # The folder may have been published (renamed to OUT) between our open and our lock: try again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.work))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                break
            os.close(fd)
        else:  # pragma: no cover - ten publishes in a row between two system calls
            raise _cli_error(self.given, "a folder no other run is publishing at the same time")
        self.resumed_work = resume and any(p.name != LOCK_FILE for p in self.work.iterdir())
        if not resume:
            for entry in self.work.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (self.work / LOCK_FILE).write_text(json.dumps(holder), encoding="utf-8")
        return self.work

    def _holder(self) -> str:
        try:
            h = json.loads((self.work / LOCK_FILE).read_text(encoding="utf-8"))
            return f"csfsim process {h['pid']} on {h['host']} has held {self.work.name} since {h['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"another csfsim process holds {self.work.name}"

    def publish(self, manifest: dict[str, Any]) -> None:
        """Write `manifest`, its `files` set to every entry published, and put the folder in place as `OUT`."""
        from sim.outputs import write_json

        if self._fd is None:
            raise RuntimeError("publish() before open()")
        (self.work / LOCK_FILE).unlink(missing_ok=True)
        entries = sorted({p.name for p in self.work.iterdir() if not p.name.startswith(".")} | {"manifest.json"})
        manifest["files"] = entries
        write_json(self.work / "manifest.json", manifest)
        # Again: the folder may have changed while the command ran.
        check_replaceable(self.out, self.kind, self.overwrite, self.given)
        old = None
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
        os.replace(self.work, self.out)
        self.published = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
