"""One replication's patients, drawn vectorised up front: arrivals, attributes and every per-use uniform.

Nothing random happens after this: the SimPy process only reads these arrays. Durations that depend on the
center (service, booking, referral delays) are transformed per center by the engine from the same uniforms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sim.config.parameters import (
    BERN_CLASSES,
    COMPLICATION_KINDS,
    ETIOLOGIES,
    IATROGENIC,
    LEAK_COMPLICATION_KINDS,
    LEAK_TYPES,
    RESOURCES,
    Scenario,
)
from sim.model.front_door import VISIT_SLOTS, through_front_door
from sim.model.randomness import SLOTS, pcg64_states, purpose_key, stream

FRONT_DOOR_FIELDS = ("first_contact_day", "front_door_visits", "front_door_gave_up_day")

# Per-use uniform arrays: name -> (stream purpose, slot count).
PER_USE: dict[str, tuple[str, int]] = {
    "consultation": ("consultation", SLOTS["consultation"]),
    "mri_sign": ("mri", SLOTS["mri"]),
    "mri_read": ("mri", SLOTS["mri"]),
    "mri_despite_normal": ("mri", SLOTS["mri"]),
    "imaging": ("imaging", SLOTS["imaging"]),
    "ebp": ("ebp", SLOTS["ebp"]),
    "targeted_patch": ("targeted_patch", SLOTS["targeted_patch"]),
    "fibrin_patch": ("fibrin_patch", SLOTS["fibrin_patch"]),
    "surgery": ("surgery", SLOTS["surgery"]),
    "durotomy_repair": ("durotomy_repair", SLOTS["durotomy_repair"]),
    "embolization": ("embolization", SLOTS["embolization"]),
    "rih_occurs": ("rih", SLOTS["rih"]),
    "rih_recognized": ("rih", SLOTS["rih"]),
    "rih_onset": ("rih", SLOTS["rih"]),
    "rih_duration": ("rih", SLOTS["rih"]),
    "recurrence_occurs": ("recurrence", SLOTS["recurrence"]),
    "recurrence_delay": ("recurrence", SLOTS["recurrence"]),
    "referral": ("referral", SLOTS["referral"]),
    "second_opinion": ("second_opinion", SLOTS["second_opinion"]),
    "misdiagnosis_return": ("misdiagnosis_return", SLOTS["misdiagnosis_return"]),
    "conservative": ("conservative", SLOTS["conservative"]),
    "residual_occurs": ("residual", SLOTS["residual"]),
    "residual_recovery": ("residual", SLOTS["residual"]),
    "relief_occurs": ("relief", SLOTS["relief"]),
    "relief_days": ("relief", SLOTS["relief"]),
    "complications": ("complications", len(COMPLICATION_KINDS)),  # one per kind, in their order
    # Per kind (in their order): whether it would happen, and when (onset_days).
    "leak_complications": ("leak_complications", 2 * len(LEAK_COMPLICATION_KINDS)),
    **{f"service:{i}": (f"service:{i}", SLOTS["service"]) for i in range(len(RESOURCES))},
    **{f"booking:{i}": (f"booking:{i}", SLOTS["booking"]) for i in range(len(RESOURCES))},
}


# Treatment purposes whose uniforms are kept side by side in one (patient, slot) array, `Cohort.treatments`.
TREATMENT_UNIFORMS: tuple[str, ...] = ("ebp", "targeted_patch", "fibrin_patch", "surgery", "durotomy_repair",
                                       "embolization")


@dataclass
class Cohort:
    """All patients of one replication, sorted by onset. Indexes: etiology into ETIOLOGIES, leak type into
    LEAK_TYPES (-1 for procedure-related leaks), home center into scenario.centers."""

    n: int
    etiology: np.ndarray
    leak_type: np.ndarray
    onset_day: np.ndarray
    presented_day: np.ndarray  # first consultation at a center, after the front door (inf: never; may lie past
    # the horizon)
    natural_resolution_day: np.ndarray  # inf for leaks that never close on their own
    home_center: np.ndarray
    direct_repair: np.ndarray  # spinal-surgery tears sent straight to repair
    severe: np.ndarray  # a procedure-related headache severe enough for a short conservative window
    slec: np.ndarray  # a spontaneous leak with extradural CSF on spine MRI
    bern_class: np.ndarray  # index into BERN_CLASSES of a spontaneous leak's brain-MRI Bern score; -1 otherwise
    first_contact_day: np.ndarray  # onset + care seeking: the first front-door visit
    front_door_visits: np.ndarray
    front_door_gave_up_day: np.ndarray  # inf: did not give up at the front door
    uniforms: dict[str, np.ndarray] = field(repr=False)
    # "booking" and "service": the per-resource uniforms as one (resource, patient, slot) array, of which
    # uniforms["booking:r"] is row r (a contiguous view), so the fast path gathers across resources at once.
    by_resource: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # The TREATMENT_UNIFORMS side by side, of which uniforms["ebp"] etc. are column blocks (views), so the fast
    # path reads the draw of any mix of treatments with one gather and without copying them first.
    treatments: np.ndarray | None = field(default=None, repr=False)

    def rows(self, rows: slice) -> Cohort:
        """The patients in `rows` (one replication of a batch from `draw_cohorts`), as views."""
        return Cohort(
            n=len(range(*rows.indices(self.n))),
            **{name: getattr(self, name)[rows] for name in ("etiology", "leak_type", "onset_day", "presented_day",
                                                            "natural_resolution_day", "home_center",
                                                            "direct_repair", "severe", "slec",
                                                            "bern_class", *FRONT_DOOR_FIELDS)},
            uniforms={name: values[rows] for name, values in self.uniforms.items()},
            by_resource={kind: block[:, rows] for kind, block in self.by_resource.items()},
            treatments=self.treatments[rows] if self.treatments is not None else None,
        )

    def resource_uniforms(self, kind: str) -> np.ndarray:
        """The (resource, patient, slot) uniforms of `kind` ("booking" or "service")."""
        block = self.by_resource.get(kind)
        if block is None:
            block = self.by_resource[kind] = np.stack([self.uniforms[f"{kind}:{r}"] for r in range(len(RESOURCES))])
        return block


@dataclass(frozen=True)
class CareReach:
    """Which patients of a cohort reach care before the horizon, as boolean masks (both engines settle the others
    without simulating them): `without_care` closed on their own before presenting, within the horizon;
    `unpresented` neither closed nor presented by the horizon; `admitted` present before both."""

    without_care: np.ndarray
    unpresented: np.ndarray
    admitted: np.ndarray


def care_reach(cohort: Cohort, horizon_days: float) -> CareReach:
    """Split the cohort by whether and how it reaches care before `horizon_days` (see `CareReach`)."""
    nat, presented = cohort.natural_resolution_day, cohort.presented_day
    early = nat <= presented
    closed = nat < horizon_days
    return CareReach(without_care=early & closed,
                     unpresented=(early & ~closed) | (~early & (presented >= horizon_days)),
                     admitted=~early & (presented < horizon_days))


def draw_cohort(scenario: Scenario, root_seed: int, replication: int) -> Cohort:
    """The patients of one replication."""
    return draw_cohorts(scenario, root_seed, [replication])[0]


def draw_cohorts(scenario: Scenario, root_seed: int, replications: Sequence[int]) -> tuple[Cohort, list[int]]:
    """The patients of several replications as one cohort, each replication's rows after the previous one's, and
    the number of patients of each. Every replication's draws are those `draw_cohort` gives it alone: its
    arrivals come first (so the sizes are known), then its per-use uniforms are written straight into its rows
    of the joint arrays (no copy of a joined cohort: the fast path advances a batch of replications at once)."""
    arrivals = [_arrivals(scenario, root_seed, rep) for rep in replications]
    sizes = [a.n for a in arrivals]
    n = sum(sizes)
    # Per-use uniforms are the bulk of the data: `booking` and `service` as (resource, patient, slot) blocks and
    # the treatments side by side, of which the per-name arrays are views.
    by_resource = {kind: np.empty((len(RESOURCES), n, SLOTS[kind])) for kind in ("booking", "service")}
    treatments = np.empty((n, sum(SLOTS[name] for name in TREATMENT_UNIFORMS)))
    edges = np.cumsum([0, *(SLOTS[name] for name in TREATMENT_UNIFORMS)]).tolist()
    uniforms = {name: treatments[:, edges[k]:edges[k + 1]] for k, name in enumerate(TREATMENT_UNIFORMS)}
    uniforms.update({name: np.empty((n, slots)) for name, (_, slots) in PER_USE.items()
                     if ":" not in name and name not in uniforms})
    uniforms.update({f"{kind}:{r}": block[r] for kind, block in by_resource.items() for r in range(len(RESOURCES))})
    start = 0
    for rep, arr in zip(replications, arrivals, strict=True):
        rows = slice(start, start + arr.n)
        _fill_uniforms(root_seed, rep, arr, {name: values[rows] for name, values in uniforms.items()})
        start += arr.n

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(a, name) for a in arrivals]) if len(arrivals) != 1 else \
            getattr(arrivals[0], name)

    cohort = Cohort(
        n=n,
        **{name: joined(name) for name in ("etiology", "leak_type", "onset_day", "presented_day",
                                           "natural_resolution_day", "home_center", "direct_repair", "severe",
                                           "slec", "bern_class", *FRONT_DOOR_FIELDS)},
        uniforms=uniforms,
        by_resource=by_resource,
        treatments=treatments,
    )
    return cohort, sizes


@dataclass
class _Arrivals:
    """One replication's patients before their per-use uniforms: attributes in onset order, and what the
    uniform draws need (the thinning kept-masks per etiology and the onset order)."""

    n: int
    etiology: np.ndarray
    leak_type: np.ndarray
    onset_day: np.ndarray
    presented_day: np.ndarray
    natural_resolution_day: np.ndarray
    home_center: np.ndarray
    direct_repair: np.ndarray
    severe: np.ndarray
    slec: np.ndarray
    bern_class: np.ndarray
    first_contact_day: np.ndarray
    front_door_visits: np.ndarray
    front_door_gave_up_day: np.ndarray
    kept: list[np.ndarray]
    order: np.ndarray


def _arrivals(scenario: Scenario, root_seed: int, replication: int) -> _Arrivals:
    pop = scenario.population
    horizon = scenario.horizon_days
    parts: list[dict[str, np.ndarray]] = []
    kept: list[np.ndarray] = []  # per etiology: which candidate arrivals thinning kept
    for e_idx, etiology in enumerate(ETIOLOGIES):
        # Non-homogeneous Poisson arrivals by thinning: candidates at the peak rate, each kept with probability
        # rate(t) / peak. With constant demand every candidate is kept and the thinning stream changes nothing.
        peak = pop.max_rate_multiplier(horizon)
        rate_per_day = pop.arrivals_per_year[etiology] / 365.25 * peak
        arr = stream(root_seed, replication, "arrivals", e_idx)
        n_e = int(arr.poisson(rate_per_day * horizon))
        onset = np.sort(arr.uniform(0.0, horizon, n_e))
        keep = stream(root_seed, replication, "thinning", e_idx).random(n_e) < pop.rate_multiplier(onset) / peak
        if scenario.arrivals_until_days is not None:
            # Cohort mode: the period run's patients with onset before the day, each with the same draws.
            keep &= onset < scenario.arrivals_until_days
        attr = stream(root_seed, replication, "attributes", e_idx)
        u_leak, u_home, u_direct = attr.random(n_e), attr.random(n_e), attr.random(n_e)
        u_slec = attr.random(n_e)  # drawn after the others, so that they are what they were before it existed
        u_bern = attr.random(n_e)  # likewise after the SLEC draw
        nat = stream(root_seed, replication, "natural_history", e_idx)
        u_self_limiting, u_nat_days = nat.random(n_e), nat.random(n_e)
        u_seek = stream(root_seed, replication, "care_seeking", e_idx).random(n_e)
        u_severe = stream(root_seed, replication, "severity", e_idx).random(n_e)
        door = stream(root_seed, replication, "front_door", e_idx)
        u_refer, u_return, u_self = door.random((n_e, VISIT_SLOTS)), door.random((n_e, VISIT_SLOTS)), door.random(n_e)

        if etiology == "spontaneous":
            cum = np.cumsum([pop.leak_type_shares[lt] for lt in LEAK_TYPES])
            leak = np.minimum(np.searchsorted(cum, u_leak, side="right"), len(LEAK_TYPES) - 1)
        else:
            leak = np.full(n_e, -1)
        cum_home = np.cumsum([c.catchment_share[etiology] for c in scenario.centers])
        home = np.minimum(np.searchsorted(cum_home, u_home * cum_home[-1], side="right"),
                          len(scenario.centers) - 1)
        self_limiting = u_self_limiting < pop.self_limiting_probability[etiology]
        nat_day = np.where(self_limiting, onset + pop.self_limiting_days[etiology].ppf(u_nat_days), np.inf)
        first_contact = onset + pop.care_seeking_days[etiology].ppf(u_seek)
        path = through_front_door(first_contact, etiology, pop, u_refer, u_return, u_self)
        part = {
            "etiology": np.full(n_e, e_idx),
            "leak_type": leak,
            "onset_day": onset,
            "presented_day": path.presented_day,
            "first_contact_day": first_contact,
            "front_door_visits": path.visits,
            "front_door_gave_up_day": path.gave_up_day,
            "natural_resolution_day": nat_day,
            "home_center": home,
            "direct_repair": (u_direct < scenario.clinical.spinal_surgery_direct_repair_probability)
            & (etiology == "spinal_surgery"),
            "severe": (u_severe < pop.severe_headache_probability[etiology]) & (etiology in IATROGENIC),
            "slec": (leak >= 0) & (u_slec < np.array([pop.slec_probability[lt] for lt in LEAK_TYPES])[leak]),
            "bern_class": _bern_classes(leak, u_bern, scenario.clinical.bern_class_shares),
        }
        if not keep.all():
            part = {name: values[keep] for name, values in part.items()}
        parts.append(part)
        kept.append(keep)

    onset_all = np.concatenate([p["onset_day"] for p in parts])
    order = np.argsort(onset_all, kind="stable")
    n = int(onset_all.size)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([p[name] for p in parts])[order]

    return _Arrivals(n=n, etiology=cat("etiology"), leak_type=cat("leak_type"), onset_day=onset_all[order],
                     presented_day=cat("presented_day"), natural_resolution_day=cat("natural_resolution_day"),
                     home_center=cat("home_center"), direct_repair=cat("direct_repair"), severe=cat("severe"),
                     slec=cat("slec"), bern_class=cat("bern_class"),
                     **{name: cat(name) for name in FRONT_DOOR_FIELDS}, kept=kept, order=order)


def bern_class_name(code: int) -> str:
    """The Bern class a cohort's `bern_class` code stands for; "" for a procedure-related leak (code -1)."""
    return BERN_CLASSES[code] if code >= 0 else ""


def _bern_classes(leak_type: np.ndarray, u: np.ndarray, shares: dict[str, dict[str, float]]) -> np.ndarray:
    """Each spontaneous leak's Bern-score class (index into BERN_CLASSES) from its uniform and its leak type's
    class shares; -1 for procedure-related leaks (leak type -1)."""
    cum = np.cumsum([[shares[lt][b] for b in BERN_CLASSES] for lt in LEAK_TYPES], axis=1)
    last = len(BERN_CLASSES) - 1
    classes = np.minimum((u[:, None] >= cum[leak_type]).sum(axis=1), last)
    return np.where(leak_type >= 0, classes, -1)


def _fill_uniforms(root_seed: int, replication: int, arr: _Arrivals, uniforms: dict[str, np.ndarray]) -> None:
    """Write one replication's per-use uniforms into `uniforms` (its rows of the joint arrays, in onset order)."""
    kept, order, n = arr.kept, arr.order, arr.n
    # Per-use uniforms are the bulk of the data. Each name's draws are generated straight into one buffer in
    # etiology order (the order of `onset_all`), then put in onset order by one `take` into their array: one copy,
    # and a row-block gather is cheaper than scattering rows etiology by etiology. The streams are opened by
    # setting one generator to their precomputed states (`pcg64_states`), and each stream gives the names of
    # its purpose their draws in PER_USE order, as before: the values are the same.
    sizes = [int(keep.sum()) for keep in kept]
    bounds = np.cumsum([0, *sizes]).tolist()
    purposes: dict[str, list[str]] = {}
    for name, (purpose, _) in PER_USE.items():
        purposes.setdefault(purpose, []).append(name)
    keys = [(replication, purpose_key(purpose), e_idx) for purpose in purposes for e_idx in range(len(kept))]
    states = pcg64_states(root_seed, keys)
    shared = np.random.Generator(np.random.PCG64(0)) if states is not None else None
    buffers: dict[tuple[int, int], np.ndarray] = {}
    for p_idx, (purpose, names) in enumerate(purposes.items()):
        bufs = []
        for k, name in enumerate(names):
            slots = PER_USE[name][1]
            buf = buffers.get((slots, k))
            if buf is None:
                buf = buffers[slots, k] = np.empty((n, slots))
            bufs.append(buf)
        for e_idx, keep in enumerate(kept):
            if shared is not None and states is not None:
                shared.bit_generator.state = states[p_idx * len(kept) + e_idx]
                gen = shared
            else:
                gen = stream(root_seed, replication, purpose, e_idx)
            for buf in bufs:
                rows = buf[bounds[e_idx]:bounds[e_idx + 1]]
                if sizes[e_idx] == keep.size:
                    gen.random(out=rows)
                else:
                    rows[...] = gen.random((keep.size, rows.shape[1]))[keep]
        for name, buf in zip(names, bufs, strict=True):
            if uniforms[name].flags.c_contiguous:
                np.take(buf, order, axis=0, out=uniforms[name])
            else:  # a column block of `treatments`: a plain gather then copy beats take's buffered output
                uniforms[name][...] = buf[order]


