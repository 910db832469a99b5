"""Writing results: atomic files, per-replication parts concatenated on disk, and the run manifest."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from sim.config.schema import REPO_ROOT


@contextlib.contextmanager
def _temporary_beside(path: Path) -> Iterator[Path]:
    """A temporary name beside `path`, moved to `path` when the block succeeds and removed when it fails (a full
    disk or an interruption leaves no `.NAME.tmp-PID` behind)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with _temporary_beside(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with _temporary_beside(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_csv(path: Path, df: pd.DataFrame) -> None:
    text = csv_text(df)
    with _temporary_beside(path) as tmp:
        if text is None:
            df.to_csv(tmp, index=False)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)


# Text that pandas' CSV writer (csv.QUOTE_MINIMAL) never quotes.
_PLAIN = re.compile(r"[A-Za-z0-9_.+\-/ ()%:<>=']+")


def csv_text(df: pd.DataFrame) -> str | None:
    """The bytes `df.to_csv(index=False)` writes, made ~3 times faster; None for a table it does not cover.

    Why: writing km.csv (~30,000 rows of floats) was most of the time of finalizing a small run, and pandas spends
    it formatting every float alone. Here each distinct value is formatted once, with the very call pandas
    makes (`ndarray.astype(str)`, missing values as empty fields), and rows are joined as pandas joins them.
    Covered: float, integer and boolean numpy columns, and text columns of plain text (nothing to quote, none
    missing); anything else (quoting, missing text, dates, categoricals, extension types) returns None."""
    names = [str(c) for c in df.columns]
    if not names or any(not isinstance(c, str) or not _PLAIN.fullmatch(c) for c in df.columns):
        return None
    columns = []
    for _, col in df.items():
        dtype = col.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
            v = col.to_numpy()
            # Distinct bit patterns, so that -0.0 and 0.0 (equal as numbers) keep their own text.
            bits, inverse = np.unique(v.view(f"u{v.itemsize}"), return_inverse=True)
            text = bits.view(v.dtype).astype(str).astype(object)
            if dtype.kind == "f":
                text[np.isnan(bits.view(v.dtype))] = ""
            columns.append(text[inverse.ravel()])
        elif dtype == np.dtype(object) or isinstance(dtype, pd.StringDtype):
            v = col.to_numpy(dtype=object)
            if not all(type(x) is str and _PLAIN.fullmatch(x) for x in pd.unique(v)):
                return None
            columns.append(v)
        else:
            return None
    return "\n".join([",".join(names), *map(",".join, zip(*columns, strict=True))]) + "\n"


# Columns are converted to Arrow on this thread: with pyarrow's default a table of a few thousand rows started
# a thread per column and cost more in starting them than in converting (per replication, about half the time
# of writing its parts). Runs are parallel over processes already.
ARROW_THREADS = 1


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth Parquet's dictionary encoding: all but the floating-point ones. Days, costs and QALYs
    are nearly all distinct, so a dictionary for them is built, found too large and dropped, column by column:
    measured on a 26,000-patient replication, that was a third of the time of appending it to patients.parquet,
    and without it the file is 17% smaller (names, counts and flags keep their dictionaries)."""
    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def arrow_table(df: pd.DataFrame) -> pa.Table:
    """`df` as an Arrow table, as the run's parts and Parquet files hold it (no index)."""
    return pa.Table.from_pandas(df, preserve_index=False, nthreads=ARROW_THREADS)


def atomic_write_arrow(path: Path, df: pd.DataFrame, table: pa.Table | None = None) -> pa.Table:
    """Write `df` as an uncompressed Arrow IPC (Feather) file, atomically; returns the Arrow table written.
    Why, for per-replication parts: they are read back once, to be appended to the run's Parquet file, and an
    Arrow file is written and read ~5 times faster than a Parquet one (no encoding or compression), and read
    back as the very table written. `table`: `arrow_table(df)` when the caller has it already (a slice of a
    fast-path batch's table: converting the batch once saved ~1.4 ms per replication of ~1,300 patients)."""
    if table is None:
        table = arrow_table(df)
    with _temporary_beside(path) as tmp:
        feather.write_feather(table, tmp, compression="uncompressed")
    return table


def read_part(stem: Path) -> pa.Table:
    """A per-replication part: `stem`.arrow, or `stem`.parquet as csfsim wrote them before (an interrupted run
    resumed with this version)."""
    arrow = stem.with_name(stem.name + ".arrow")
    return feather.read_table(arrow) if arrow.exists() else pq.read_table(stem.with_name(stem.name + ".parquet"))


def part_rows(stem: Path) -> int:
    """Rows of a per-replication part (see `read_part`) without reading its data."""
    arrow = stem.with_name(stem.name + ".arrow")
    if arrow.exists():
        with pa.memory_map(str(arrow)) as source:
            return pa.ipc.open_file(source).read_all().num_rows
    return pq.ParquetFile(stem.with_name(stem.name + ".parquet")).metadata.num_rows


class ParquetConcat:
    """Appends Parquet parts, one row group each, to one file written under a temporary name and moved to `dest`
    by `close()`. Lets a run append each replication's part as soon as it is there (and the ones before it), so
    that concatenation overlaps the simulation instead of adding to the serial end of the run.
    Memory holds one part at a time."""

    def __init__(self, dest: Path, tmp: Path | None = None) -> None:
        self.dest = dest
        self.tmp = tmp or dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def add(self, part: Path, table: pa.Table | None = None) -> None:
        """Append the Parquet file at `part`, or `table` when the caller holds it."""
        if table is None:
            table = pq.read_table(part)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema, use_dictionary=dictionary_columns(table.schema))
        elif table.schema != self.writer.schema:
            table = table.cast(self.writer.schema)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> int:
        """Finish the file and put it in place (nothing is written when no part was added); rows written."""
        if self.writer is None:
            return 0
        self.writer.close()
        self.writer = None
        os.replace(self.tmp, self.dest)
        return self.rows

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.tmp.unlink(missing_ok=True)


def concat_parquet(parts: Iterable[Path], dest: Path) -> int:
    """Stream per-replication Parquet parts into one file (one row group per part); returns rows written.
    Memory holds one part at a time."""
    out = ParquetConcat(dest)
    try:
        for part in parts:
            out.add(part)
    except BaseException:
        out.abort()
        raise
    return out.close()


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return head + ("-dirty" if dirty else "")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a run uses."""
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:
    # Read once per process (~10 ms of package metadata): they are the versions imported, which do not change.
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("csfsim", "simpy", "numpy", "scipy", "pandas", "pyarrow", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def provenance(command: str | None = None) -> dict[str, Any]:
    """The provenance block of every manifest: the command that made the output, the code's git commit and the
    versions of Python and the packages."""
    return {"command": command or command_line(), "git_commit": git_commit(), "versions": versions()}


def command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
