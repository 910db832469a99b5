"""The treatment ladder tabulated for the fast engine: `sim.model.clinical`'s rules, memoized over (history, center).

Why. The next ladder step is a pure function of a small discrete state (the patient's `clinical.History`) and the
current center. `LadderTable` interns each distinct History as an integer and fills, once per (state, center) pair
met, the step, its success probabilities and the next states by calling `clinical.next_step`, `record_step`,
`record_imaging`, ... themselves; so a patient's whole history is one integer that numpy can carry and index with.
"""

from __future__ import annotations

import copy
import math
from dataclasses import fields

import numpy as np

from sim.config.parameters import RESOURCES, Scenario
from sim.model import clinical as cl

INF = math.inf
STEP_CODE = {s: i for i, s in enumerate(cl.STEPS)}
_HISTORY_FIELDS = tuple(f.name for f in fields(cl.History))


def _every(mask: np.ndarray) -> bool:
    """`mask.all()` for a boolean array, without ndarray.all's Python wrapper."""
    return np.count_nonzero(mask) == mask.size


def _some(mask: np.ndarray) -> bool:
    """`mask.any()` for a boolean array, without ndarray.any's Python wrapper."""
    return np.count_nonzero(mask) > 0


class LadderTable:
    """The treatment ladder, memoized over (interned History, center) pairs. Pair columns are flat arrays
    indexed by `state * n_centers + center`, filled on first use."""

    def __init__(self, scenario: Scenario, refer_index: list[int]) -> None:
        self.clinical = scenario.clinical
        self.profiles = [c.profile for c in scenario.centers]
        self.can_refer = [i >= 0 for i in refer_index]
        self.nc = len(self.profiles)
        # Success depends on time since onset only through these days (`clinical.time_thresholds`): band b of a
        # pair holds the probability for days in (thresholds[b - 1], thresholds[b]], the last band beyond.
        self.thresholds = np.array(cl.time_thresholds(self.clinical), dtype=np.float64)
        self._band_days = [*self.thresholds.tolist(), INF]
        self.histories: list[cl.History] = []
        self.ids: dict[tuple, int] = {}
        self.cap = 0
        self._grow(32)

    def _grow(self, cap: int) -> None:
        """Make room for `cap` states (pair arrays are state-major, so existing keys keep their meaning)."""
        def widen(old: np.ndarray | None, size: int, fill: float | int | bool, dtype: type,
                  width: int | None = None) -> np.ndarray:
            new = np.full(size if width is None else (size, width), fill, dtype=dtype)
            if old is not None:
                new[:old.shape[0]] = old
            return new

        n_pairs = cap * self.nc
        get = self.__dict__.get
        self.known = widen(get("known"), n_pairs, False, bool)
        self.step = widen(get("step"), n_pairs, 0, np.int64)
        self.resource = widen(get("resource"), n_pairs, 0, np.int64)
        self.p_success = widen(get("p_success"), n_pairs, np.nan, np.float64, len(self._band_days))
        self.imaging_yield = widen(get("imaging_yield"), n_pairs, np.nan, np.float64)
        self.next_state = widen(get("next_state"), n_pairs, -1, np.int64)
        self.next_found = widen(get("next_found"), n_pairs, -1, np.int64)
        self.p_rih = widen(get("p_rih"), n_pairs, np.nan, np.float64)
        self.p_recur = widen(get("p_recur"), n_pairs, np.nan, np.float64)
        self.p_relief = widen(get("p_relief"), n_pairs, 0.0, np.float64)
        self._new_episode = widen(get("_new_episode"), cap, -1, np.int64)
        self._misread_ebp = widen(get("_misread_ebp"), cap, -1, np.int64)
        self._arrive = widen(get("_arrive"), cap, -1, np.int64)
        self.cap = cap

    def intern(self, h: cl.History, owned: bool = False) -> int:
        """The integer state of a History. A new one is stored as a copy, or as is when `owned` (a copy made
        for the purpose, that nobody else will change)."""
        key = tuple(getattr(h, name) for name in _HISTORY_FIELDS)
        sid = self.ids.get(key)
        if sid is None:
            sid = self.ids[key] = len(self.histories)
            self.histories.append(h if owned else copy.copy(h))
            if sid >= self.cap:
                self._grow(2 * self.cap)
        return sid

    def _after(self, sid: int, change) -> int:
        h = copy.copy(self.histories[sid])
        change(h)
        return self.intern(h, owned=True)

    def ensure(self, keys: np.ndarray) -> None:
        """Fill every (state, center) pair among `keys` that has not been met yet."""
        known = self.known[keys]
        if not _every(known):
            for key in np.unique(keys[~known]).tolist():
                self._fill(key)

    def _fill(self, key: int) -> None:
        sid, c = divmod(key, self.nc)
        h, profile, cln = self.histories[sid], self.profiles[c], self.clinical
        step = cl.next_step(h, profile, self.can_refer[c], cln)
        self.step[key] = STEP_CODE[step]
        if step in cl.STEP_RESOURCE:
            self.resource[key] = RESOURCES.index(cl.STEP_RESOURCE[step])
        if step in cl.IMAGING_STEPS:
            self.imaging_yield[key] = cl.imaging_yield(step, h, profile, cln)
            self.next_state[key] = self._after(sid, lambda x: cl.record_imaging(x, profile, False, step))
            self.next_found[key] = self._after(sid, lambda x: cl.record_imaging(x, profile, True, step))
        elif step in cl.TREATMENTS:
            self.p_success[key] = [cl.success_probability(step, h, profile, cln, days) for days in self._band_days]
            nxt = self._after(sid, lambda x: cl.record_step(x, step, profile, cln))
            self.next_state[key] = nxt
            self.p_rih[key] = cl.rih_probability(step, self.histories[nxt], cln)
            self.p_recur[key] = cl.recurrence_probability(step, self.histories[nxt], cln)
            self.p_relief[key] = cl.transient_relief_probability(step, h, cln)
        self.known[key] = True

    def new_episode(self, states: np.ndarray) -> np.ndarray:
        """States after a recurrence (`History.start_new_episode`)."""
        return self._memo(self._new_episode, states, cl.History.start_new_episode)

    def _memo(self, memo: np.ndarray, states: np.ndarray, change) -> np.ndarray:
        """memo[states], filling the states met for the first time with `change` applied to their History."""
        out = memo[states]
        if _some(out < 0):
            for sid in np.unique(states[out < 0]).tolist():
                memo[sid] = self._after(sid, change)
            out = memo[states]
        return out

    def arrive(self, states: np.ndarray) -> np.ndarray:
        """States after a referral (`History.arrive_at_new_center`)."""
        return self._memo(self._arrive, states, cl.History.arrive_at_new_center)

    def misread_ebp(self, states: np.ndarray) -> np.ndarray:
        """States after a needless blood patch for misread RIH (`clinical.record_needless_ebp`)."""
        return self._memo(self._misread_ebp, states, cl.record_needless_ebp)


_TABLES: dict[int, tuple[Scenario, LadderTable]] = {}


def ladder_table(scenario: Scenario, refer_index: list[int]) -> LadderTable:
    """The scenario's LadderTable, kept across its replications (entries are pure functions of the scenario)."""
    hit = _TABLES.get(id(scenario))
    if hit is not None and hit[0] is scenario:
        return hit[1]
    if len(_TABLES) >= 16:
        _TABLES.clear()
    table = LadderTable(scenario, refer_index)
    _TABLES[id(scenario)] = (scenario, table)
    return table
