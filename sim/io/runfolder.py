"""The run-folder protocol every command that writes results follows: work in `OUT.partial/` under an exclusive
lock, then publish it as `OUT` in two renames, replacing only what csfsim itself wrote there, and only when asked.

Why. Publishing used to rename away and remove whatever folder `--out` named: a user's notes, even the scenario
file, were lost. Two runs into one `--out` wrote the same temporary files and published corrupt or mixed tables.
Now a folder is replaced only if its manifest says it is a finished csfsim output of the same kind, it holds
nothing csfsim did not write, and the caller passed `overwrite`. `OUT.partial/` carries a marker file naming the
command that made it (a folder of that name without one is the user's, never emptied), and the marker is locked
(flock, released by the kernel when the process dies, so a killed run never leaves a stale lock) from the first
write to the publish.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sim.errors import ScenarioError

# The manifest key that marks each kind of finished output folder (written by the command that made it).
KINDS = {"run": "csfsim_run", "compare": "csfsim_compare", "sweep": "csfsim_sweep", "psa": "csfsim_psa",
         "explain": "csfsim_explain",
         "sensitivity": "csfsim_sensitivity", "warmup": "csfsim_warmup"}
# What each kind wrote before manifests listed every entry (`files`), so that such a folder can still be replaced.
EARLIER_OUTPUTS = {
    "run": {"patients.parquet", "events.parquet", "resource_uses.parquet", "summary.csv", "resources.csv", "km.csv",
            "distributions.csv", "resource_timeseries.csv"},
    "compare": {"comparison.csv", "crn_variance_reduction.csv"},
    "sweep": {"sweep.csv", "sweep.png", "sweep.svg"},
    "warmup": {"warmup.csv", "warmup.png", "warmup.svg"},
    "psa": {"psa_samples.csv", "psa.csv", "variance.csv", "parameters.csv", "uncertainty.csv", "ceac.csv", "cea.csv",
            "ce_plane.png", "ceac.png"},
    "sensitivity": {"oneway.csv", "tornado.png", "tornado.svg", "sobol.csv"},
}
# What OUT.partial held for an interrupted run or PSA of a csfsim without the marker (they can still resume):
# its record, and the folder of its parts, with their names.
EARLIER_PARTIALS = {"run": ("run.json", "seed", "parts", re.compile(r"[a-z_]+-\d{5}\.(csv|arrow|parquet|bin)")),
                    "psa": ("psa.json", "samples", "samples", re.compile(r"sample-\d{5}\.csv"))}
# What `csfsim report`, --xlsx and `csfsim events` add to a finished folder, besides what the manifest lists.
REPORT_OUTPUTS = ("report.html", "figures", "summary.xlsx", "process_log.csv")
FIGURE_SUFFIXES = (".png", ".svg")
MARKER = ".csfsim-partial.json"  # in OUT.partial: the kind of command that made it and who holds it (locked)
MAX_NAME = 200  # bytes of the folder's name: OUT.partial and the temporary names must fit in 255
_TEMPORARY = re.compile(r"\..+\.(tmp-\d+|tmp|old-\d+)")  # csfsim's atomic writes and publishes, left by a kill


def _earlier_partial(work: Path) -> str | None:
    """The kind of an OUT.partial without a marker: "" if empty, the kind if it holds exactly what an earlier
    csfsim wrote there (a record it can read, parts with csfsim's names), None if anything else (the user's)."""
    names = {p.name for p in work.iterdir()}
    if not names:
        return ""
    for kind, (record, key, parts, part_name) in EARLIER_PARTIALS.items():
        if not names <= {record, parts} or record not in names:
            continue
        try:
            ok = key in json.loads((work / record).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError):
            ok = False
        folder = work / parts
        if ok and (not folder.exists() or (folder.is_dir() and all(
                p.is_file() and (part_name.fullmatch(p.name) or _TEMPORARY.fullmatch(p.name))
                for p in folder.iterdir()))):
            return kind
    return None


def _cli_error(out: Path | str, expected: str) -> ScenarioError:
    return ScenarioError("(command line)", "--out", str(out), expected)


def check_out_path(out: str | os.PathLike[str]) -> Path:
    """`out` as an absolute path csfsim can publish a folder at, or a ScenarioError saying why not. Creates
    nothing."""
    given = Path(out)
    if len(given.name.encode()) > MAX_NAME:
        raise _cli_error(out, f"a folder name of at most {MAX_NAME} bytes")
    if given.name.endswith(".partial"):
        raise _cli_error(out, "a folder name not ending in .partial (csfsim's name for work in progress)")
    if given.is_symlink() and not given.exists():
        raise _cli_error(out, "a folder path (this is a symbolic link to nothing)")
    try:
        path = given.resolve(strict=False)
    except (RuntimeError, OSError):  # a symbolic link loop
        raise _cli_error(out, "a folder path (this is a loop of symbolic links)") from None
    if path.parent == path or not path.name:
        raise _cli_error(out, "a folder of its own for the results (not the file system's root)")
    with contextlib.suppress(OSError):  # the current folder was removed: nothing to protect
        if Path.cwd().resolve().is_relative_to(path):
            raise _cli_error(out, "a new folder for the results (not the current folder or one above it)")
    if len(path.name.encode()) > MAX_NAME:  # through a symbolic link
        raise _cli_error(out, f"a folder name of at most {MAX_NAME} bytes")
    if path.exists() and not path.is_dir():
        raise _cli_error(out, "a folder path (a file is in the way)")
    if path.is_dir() and os.path.ismount(path):
        raise _cli_error(out, "a folder that is not a mount point (it cannot be replaced by a rename: use a "
                              "folder inside it)")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise _cli_error(out, f"a folder in a writable location ({ancestor} is not)")
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


def _names(value: object) -> set[str]:
    """The strings of a manifest's list (a malformed manifest lists nothing)."""
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def foreign_entries(folder: Path) -> list[str]:
    """Entries of a finished output folder that csfsim did not write: all of them where it has no manifest."""
    manifest = _manifest(folder) or {}
    kind = kind_of(folder)
    ours = {"manifest.json", *REPORT_OUTPUTS, *_names(manifest.get("files")), *_names(manifest.get("folders"))}
    if "files" not in manifest and kind is not None:
        ours |= EARLIER_OUTPUTS[kind]
    scenarios = manifest.get("scenarios")
    if kind == "compare" and isinstance(scenarios, list):  # run folders of a comparison of an earlier csfsim
        ours |= {s["folder"] for s in scenarios if isinstance(s, dict) and isinstance(s.get("folder"), str)}
    foreign = []
    for entry in folder.iterdir():
        if entry.name == "figures" and entry.is_dir() and not entry.is_symlink():
            foreign += [f"figures/{p.name}" for p in entry.iterdir() if p.suffix not in FIGURE_SUFFIXES
                        or not p.is_file() or p.is_symlink()]
        elif entry.name not in ours and entry.name != MARKER and not _TEMPORARY.fullmatch(entry.name):
            foreign.append(entry.name)
    return sorted(foreign)


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
        raise _cli_error(shown_out, f"a folder csfsim wrote alone (this finished {kind} also holds {foreign[0]}, "
                                    "which csfsim did not write); move it or choose another --out")
    if not overwrite:
        resume = " (with --resume to finish the interrupted one)" if kind == "run" else ""
        raise _cli_error(shown_out, f"a new folder (this one holds a finished csfsim {kind}); pass --overwrite"
                                    f"{resume} to replace it, or choose another --out")


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM wait while OUT is swapped (between the two renames OUT does not exist): they are
    noted in the list yielded, for the caller to act on once the swap is done."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in held}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class InterruptedAfterPublish(KeyboardInterrupt):
    """Ctrl-C or SIGTERM came while the results were put in place: they were, completely (the CLI says so)."""


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
        self.publishing = False  # the work is complete: kept if publishing it is refused

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        try:
            # A bad input found after the folder was made (a refused engine, an unreachable scheduler) leaves
            # nothing behind; an interrupted run keeps its work for --resume where the command has one; a
            # finished one whose publishing was refused keeps it too (it is complete).
            if exc_type is not None and self._fd is not None and not self.published and not self.publishing \
                    and not self.resumed_work and (not self.keep_on_error or issubclass(exc_type, ScenarioError)):
                shutil.rmtree(self.work, ignore_errors=True)
        finally:
            self.close()

    def open(self, resume: bool = False) -> Path:
        """Lock `OUT.partial/` (made if missing) and return it; emptied first unless `resume`. A folder of that
        name that csfsim did not make for this kind of command is refused, never emptied."""
        if self.work.is_symlink() or (self.work.exists() and not self.work.is_dir()):
            raise _cli_error(self.given, f"a folder path ({self.work.name} is in the way and is not a folder "
                                         "csfsim made)")
        try:
            self.work.parent.mkdir(parents=True, exist_ok=True)
            created = not self.work.exists()
            self.work.mkdir(exist_ok=True)
        except OSError as err:
            raise _cli_error(self.given, f"a folder that can be created ({err.strerror})") from None
        if not created:
            self._check_earlier_work()
        for _ in range(10):
            try:
                fd = os.open(self.work / MARKER, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except FileNotFoundError:  # the folder was published (renamed) meanwhile: make a new one
                self.work.mkdir(exist_ok=True)
                continue
            except OSError as err:  # ELOOP: the marker is a symbolic link, which csfsim never makes
                raise _cli_error(self.given, f"a folder whose {self.work.name} csfsim made (its marker is not a "
                                             f"file csfsim wrote: {err.strerror})") from None
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise _cli_error(self.given, f"a folder whose {self.work.name} csfsim made (its marker is not a "
                                             "regular file)")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise _cli_error(self.given, f"a folder no other run is writing ({self._holder()}); wait for it "
                                             "to finish or choose another --out") from None
            except OSError as err:  # a file system without locks: two runs could not be kept apart
                os.close(fd)
                if created:
                    shutil.rmtree(self.work, ignore_errors=True)
                raise _cli_error(self.given, f"a folder on a file system with file locks ({err.strerror})") \
                    from None
            # The folder may have been published (renamed to OUT, its marker then removed) between our open and
            # our lock: then the marker at this path is another file, or none, and we try again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.work / MARKER, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                break
            os.close(fd)
            self.work.mkdir(exist_ok=True)
        else:  # pragma: no cover - ten publishes in a row between two system calls
            raise _cli_error(self.given, "a folder no other run is publishing at the same time")
        self.resumed_work = resume and any(p.name != MARKER for p in self.work.iterdir())
        if not resume:
            for entry in self.work.iterdir():
                if entry.name == MARKER:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        holder = {"kind": self.kind, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(holder).encode(), 0)
        return self.work

    def _check_earlier_work(self) -> None:
        """An existing OUT.partial is reused or emptied only if csfsim made it for this kind of command."""
        try:
            earlier = json.loads((self.work / MARKER).read_text(encoding="utf-8"))
        except FileNotFoundError:  # empty (made by a run killed at once), of an earlier csfsim, or the user's
            kind = _earlier_partial(self.work)
            earlier = None if kind is None else {"kind": kind or self.kind}
        except (OSError, ValueError):
            earlier = {}  # being written by its holder: the lock below tells
        if earlier is None:
            raise _cli_error(self.given, f"a folder whose {self.work.name} csfsim made (that folder holds files "
                                         "csfsim did not write); move it or choose another --out")
        kind = earlier.get("kind") if isinstance(earlier, dict) else None
        if kind is not None and kind != self.kind:
            raise _cli_error(self.given, f"a folder for a csfsim {self.kind} ({self.work.name} holds the work of "
                                         f"an interrupted csfsim {kind}); finish it or choose another --out")

    def _holder(self) -> str:
        try:
            h = json.loads((self.work / MARKER).read_text(encoding="utf-8"))
            return f"csfsim process {h['pid']} on {h['host']} has held {self.work.name} since {h['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"another csfsim process holds {self.work.name}"

    def check_publishable(self) -> None:
        """Refuse, keeping the finished work, if OUT changed while the command ran so that it can no longer be
        replaced (a caller may check before removing what a resume would need)."""
        self.publishing = True
        try:
            check_replaceable(self.out, self.kind, self.overwrite, self.given)
        except ScenarioError as err:
            raise ScenarioError(err.file, err.field, err.value, f"{err.expected} (the finished work is kept in "
                                                                f"{self.work})") from None

    def publish(self, manifest: dict[str, Any]) -> None:
        """Write `manifest`, its `files` set to every entry published, and put the folder in place as `OUT`."""
        from sim.io.outputs import write_json

        if self._fd is None:
            raise RuntimeError("publish() before open()")
        entries = sorted({p.name for p in self.work.iterdir() if not p.name.startswith(".")} | {"manifest.json"})
        manifest["files"] = entries
        write_json(self.work / "manifest.json", manifest)
        self.check_publishable()
        old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}") if self.out.exists() else None
        with _signals_held() as caught:
            if old is not None:
                os.replace(self.out, old)
            try:
                os.replace(self.work, self.out)
            except BaseException:
                if old is not None:  # put the earlier output back: OUT is never left missing
                    os.replace(old, self.out)
                raise
            self.published = True
            # The marker goes with the folder, still locked through our descriptor: a process that opened it
            # before the rename finds, once it has the lock, that OUT.partial holds no such file.
            (self.out / MARKER).unlink(missing_ok=True)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        if caught:  # a Ctrl-C or SIGTERM held during the swap: the results are complete
            raise InterruptedAfterPublish(str(self.out))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
