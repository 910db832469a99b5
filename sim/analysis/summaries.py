"""Per-replication outcome summaries, merged exactly into `km.csv` and `distributions.csv`.

Why: finalizing a run used to read every patient back into one pandas table to compute the Kaplan-Meier curves
and the outcome percentiles. That step was serial (it ran after the last worker finished, so it capped parallel
efficiency) and held ~600 MB per million patients (5.7 GiB for ten million). Now each worker, while it still
has its replication's patients in memory, keeps only the few numbers those tables need, for the counted patients
who reached care (`Scenario.counted`): per event (diagnosis, resolution) the durations sorted, whether the event was
observed, and the patient's center and etiology; and the other per-patient quantities. The main process then
merges one quantity at a time over replications.

The merge is exact, not an approximation:
- Kaplan-Meier needs only, at each distinct time, how many had the event and how many were still at risk. The
  pooled durations are the concatenation of the per-replication ones; sorting them (a merge of sorted runs)
  gives the same sorted array, hence the same counts and the same floating-point products, as sorting all
  patients at once (`sim.analysis.survival.km_from_sorted` is the code both paths run).
- Percentiles (`np.percentile`, linear interpolation) are order statistics: they depend on the multiset of
  values, not their order, so concatenating replications gives the same result bit for bit.
- Groups come out in the order pandas gave them before (categoricals: first appearance in the patient table,
  replication 0 first), which each replication records.
Nothing here depends on which worker ran a replication, so the tables stay identical for any jobs or backend.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sim.analysis.stats import PATIENT_QUANTITIES, PERCENTILES, replication_distribution_rows
from sim.analysis.survival import EVENTS, competing_day, curve_on_grid, event_durations, km_grid, labelled
from sim.model.records import counted_rows

# Patient quantities that are the observed Kaplan-Meier durations themselves (event day minus onset).
_FROM_KM = {"diagnosis_delay_days": "diagnosis", "time_to_resolution_days": "resolution"}
_OTHER_QUANTITIES = tuple(q for q in PATIENT_QUANTITIES if q not in _FROM_KM)
GROUP_COLUMNS = ("center", "etiology", "home_center")


def _first_appearance(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values in order of first appearance, and each value's code in that order."""
    uniq, first, inverse = np.unique(values.astype(str), return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    return uniq[np.argsort(first, kind="stable")], rank[inverse.ravel()]


def replication_outcomes(patients: pd.DataFrame, horizon_days: float) -> dict[str, np.ndarray]:
    """The compact arrays of one replication that `km.csv` and `distributions.csv` are merged from.

    Computed in the worker, with the same arithmetic as `sim.analysis.survival.time_to_event` and
    `sim.analysis.stats.distribution_table`, so the merged tables equal those computed over all patients."""
    out: dict[str, np.ndarray] = {}
    codes = {}
    for col in GROUP_COLUMNS:
        names, code = _first_appearance(patients[col].to_numpy(dtype=object)) if len(patients) else \
            (np.array([], dtype=str), np.array([], dtype=np.int64))
        out[f"{col}_names"] = names.astype(str)
        codes[col] = code.astype(np.int16)
    care = (patients["presented_day"].notna() & counted_rows(patients)).to_numpy()
    onset = patients["onset_day"].to_numpy(dtype=float)[care]
    for event, column in EVENTS.items():
        duration, observed, competing = event_durations(onset, patients[column].to_numpy(dtype=float)[care],
                                                        competing_day(patients, event)[care], horizon_days)
        order = np.argsort(duration, kind="stable")
        out[f"{event}_duration"] = duration[order]
        out[f"{event}_observed"] = observed[order]
        out[f"{event}_competing"] = competing[order]
        for col in GROUP_COLUMNS:
            out[f"{event}_{col}"] = codes[col][care][order]
    for col in GROUP_COLUMNS:
        out[col] = codes[col][care]
    for name in _OTHER_QUANTITIES:
        column, minus = PATIENT_QUANTITIES[name]
        v = patients[column].to_numpy(dtype=float)[care]
        out[name] = v - patients[minus].to_numpy(dtype=float)[care] if minus else v
    return out


_MAGIC = b"csfsim-outcomes-1\n"
Index = tuple[dict[str, tuple[str, int, int, int]], int]  # name -> (dtype or "names", length, offset, bytes); start


def write_outcomes(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically, in a plain layout (a JSON index of name -> dtype, length, offset, then the raw arrays)
    so that the merge can read one array of one replication with a single seek: opening an .npz (a zip file)
    costs ~2 ms, times hundreds of replications times two dozen arrays."""
    index: dict[str, tuple[str, int, int, int]] = {}
    offset = 0
    blobs = []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.kind == "U":  # group names, as a JSON list
            data, kind = json.dumps(a.tolist()).encode(), "names"
        else:
            data, kind = a.tobytes(), a.dtype.str
        index[name] = (kind, len(a), offset, len(data))
        blobs.append(data)
        offset += len(data)
    head = json.dumps(index).encode()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(_MAGIC + len(head).to_bytes(8, "little") + head)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def read_index(path: Path) -> Index:
    """The table of contents of an outcome summary file, and where its data starts."""
    with open(path, "rb") as f:
        if f.read(len(_MAGIC)) != _MAGIC:
            raise ValueError(f"{path} is not a csfsim outcome summary")
        size = int.from_bytes(f.read(8), "little")
        entries = {k: (str(v[0]), int(v[1]), int(v[2]), int(v[3])) for k, v in json.loads(f.read(size)).items()}
    return entries, len(_MAGIC) + 8 + size


def read_outcome(path: Path, name: str, index: Index | None = None) -> np.ndarray:
    """One array of one replication's outcome summary (`index`: `read_index(path)`, when already read)."""
    entries, start = index or read_index(path)
    kind, n, offset, nbytes = entries[name]
    if kind == "names":
        with open(path, "rb") as f:
            f.seek(start + offset)
            names = json.loads(f.read(nbytes))
        return np.array(names, dtype=str)
    return np.fromfile(path, dtype=np.dtype(kind), count=n, offset=start + offset)


class _Merger:
    """Reads the per-replication arrays one name at a time, with group codes mapped to run-wide codes whose
    order is first appearance over the run (replication 0 first), as a categorical read of the whole patient
    table would have them."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self.index = [read_index(f) for f in self.files]
        self.names: dict[str, list[str]] = {col: [] for col in GROUP_COLUMNS}
        self.maps: dict[str, list[np.ndarray]] = {col: [] for col in GROUP_COLUMNS}
        for f, index in zip(self.files, self.index, strict=True):
            for col in GROUP_COLUMNS:
                seen = self.names[col]
                local = [str(x) for x in read_outcome(f, f"{col}_names", index)]
                for name in local:
                    if name not in seen:
                        seen.append(name)
                self.maps[col].append(np.array([seen.index(n) for n in local], dtype=np.int16))

    def read(self, name: str, codes_of: str | None = None) -> np.ndarray:
        """One array over all replications, in replication order; `codes_of` names the group column whose
        per-replication codes it holds (they are translated to run-wide codes)."""
        if not self.files:
            return np.array([])
        # Filled in place rather than concatenated: the pooled array is the largest thing a merge holds.
        kind = self.index[0][0][name][0]
        out = np.empty(sum(index[0][name][1] for index in self.index),
                       dtype=np.int16 if codes_of is not None else np.dtype(kind))
        at = 0
        for i, (f, index) in enumerate(zip(self.files, self.index, strict=True)):
            a = read_outcome(f, name, index)
            out[at:at + a.size] = self.maps[codes_of][i][a] if codes_of is not None and a.size else a
            at += a.size
        return out

    def groups(self, codes: dict[str, np.ndarray], order: Sequence[str]) -> list[tuple[str, str, np.ndarray | None]]:
        """(group_by, group, mask or None for all) for all, then each group column in `order`, each group
        present in `codes` taken in run-wide first-appearance order."""
        out: list[tuple[str, str, np.ndarray | None]] = [("all", "all", None)]
        for col in order:
            present = np.unique(codes[col])
            out += [(col, self.names[col][k], codes[col] == k) for k in present]
        return out


def merged_km_table(files: Sequence[Path], horizon_days: float, events: Sequence[str] = tuple(EVENTS)
                    ) -> pd.DataFrame:
    """`sim.analysis.survival.km_table` of all patients of the run, from the per-replication outcome files (the rows of
    the given `events` only: the run merges each event on its own worker)."""
    m = _Merger(files)
    grid = km_grid(horizon_days)
    pieces = []
    for event in events:
        duration = m.read(f"{event}_duration")
        order = np.argsort(duration, kind="stable")  # merges the sorted runs of the replications
        duration = duration[order]
        observed = m.read(f"{event}_observed")[order]
        competing = m.read(f"{event}_competing")[order]
        codes = {col: m.read(f"{event}_{col}", col)[order] for col in GROUP_COLUMNS}
        del order
        for group_by, group, mask in m.groups(codes, GROUP_COLUMNS):
            d, e, c = (duration, observed, competing) if mask is None else \
                (duration[mask], observed[mask], competing[mask])
            if d.size == 0:
                continue
            pieces.append(labelled(curve_on_grid(d, e, c, grid), event, group_by, group))
        del duration, observed, competing, codes
    if not pieces:
        return pd.DataFrame(columns=["event", "group_by", "group", "days", "at_risk", "events", "survival",
                                     "ci95_low", "ci95_high", "n", "incidence"])
    return pd.concat(pieces, ignore_index=True)


def merged_distribution_table(files: Sequence[Path], per_rep: pd.DataFrame) -> pd.DataFrame:
    """`sim.analysis.stats.distribution_table` of all patients of the run, from the per-replication outcome files."""
    m = _Merger(files)
    codes = {col: m.read(col, col) for col in GROUP_COLUMNS}
    groups = m.groups(codes, ("etiology", "center"))
    values: dict[tuple[str, str], list] = {(gb, g): [] for gb, g, _ in groups}
    for name in PATIENT_QUANTITIES:
        if name in _FROM_KM:
            event = _FROM_KM[name]
            observed = m.read(f"{event}_observed")
            v_all = m.read(f"{event}_duration")
            group_codes = {col: m.read(f"{event}_{col}", col) for col in GROUP_COLUMNS}
            nan = ~observed
        else:
            v_all = m.read(name)
            group_codes = codes
            nan = np.isnan(v_all)
        for group_by, group, _ in groups:
            keep = ~nan if group_by == "all" else ~nan & (group_codes[group_by] == m.names[group_by].index(group))
            v = v_all[keep]
            q = np.percentile(v, PERCENTILES) if v.size else [math.nan] * len(PERCENTILES)
            values[(group_by, group)].append((name, int(v.size), *q))
    rows = [("patients", name, group_by, group, n, *q)
            for group_by, group, _ in groups for name, n, *q in values[(group_by, group)]]
    rows += replication_distribution_rows(per_rep)
    return pd.DataFrame(rows, columns=["across", "quantity", "group_by", "group", "n",
                                       *(f"p{p}" for p in PERCENTILES)])
