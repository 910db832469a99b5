"""The fast engine: the pathway of `sim.engines.simpy_engine`, advanced for all patients at once with numpy, when
nothing can queue.

Why this is exact. A patient holds at most one server at a time, so a resource with at least as many servers as
the replication has patients never makes anyone wait (`choice.capacity_unlimited`). Then every request is granted
the moment it is made, booking and service simply add up, and patients never interact: a patient's days depend
only on her own uniforms, which `sim.model.population` drew up front. The engine below follows
`Pathway._patient` step by step (same uniform slot for the n-th use of each purpose, same natural-resolution
checks, same horizon freezing, same symptom-day accounting) in lockstep rounds over index arrays of patients.

No clinical rule is written here. Diagnosis, giving up, RIH, recurrence and the delays come from
`sim.model.rules`, called with arrays; the ladder from `sim.model.ladder`, which tabulates `sim.model.clinical`
over (history, center); the record's columns from `sim.model.records`.

What the fast engine does not produce: the event log and the resource-use table (`events`, `resource_uses` are
None; `choice.select_engine` never picks it when they are asked for), and SimPy events (`n_simpy_events` is 0).
Waits are all zero; utilization is the exact busy time (service days up to the horizon) over capacity x horizon.
"""

from __future__ import annotations

import math

import numpy as np

from sim.config.parameters import BERN_CLASSES, ETIOLOGIES, IATROGENIC_LEAK_TYPE, LEAK_TYPES, RESOURCES, Scenario
from sim.engines.choice import capacity_unlimited
from sim.engines.fast_resources import DONE, N_RES, CenterTotals, FastClock, ResourceTotals, select, slot, some
from sim.errors import ScenarioError
from sim.model import clinical as cl
from sim.model import rules
from sim.model.ladder import ladder_table
from sim.model.population import TREATMENT_UNIFORMS, Cohort, bern_class_name
from sim.model.randomness import SLOTS
from sim.model.records import (
    BY_CONSERVATIVE,
    BY_NATURAL,
    BY_NONE,
    BY_STEP,
    COUNTER_OF_STEP,
    F_IN_PATHWAY,
    R_EXHAUSTED,
    R_UNDIAGNOSED,
    TREATMENT_COUNTERS,
    Records,
    before_care,
)
from sim.model.rules import pathway_rules

INF = math.inf
R_CLINIC, R_MRI, R_PROCEDURE = (RESOURCES.index(r) for r in ("clinic", "mri", "procedure_room"))

# Ladder steps as small integers (their index in clinical.STEPS). Codes 0 and 1 are the two non-steps.
STEPS = cl.STEPS
STEP_CODE = {s: i for i, s in enumerate(STEPS)}
C_PERSIST, C_REFER, C_EBP = (STEP_CODE[s] for s in (cl.PERSISTENT, cl.REFER, cl.EBP))
C_CONTROL_IMAGING = STEP_CODE[cl.IMAGING_CONTROL]
IS_IMAGING = np.array([s in cl.IMAGING_STEPS for s in STEPS])
IS_DEFINITIVE = np.array([s in cl.DEFINITIVE for s in STEPS])
# Per first-day column (clinical.FIRST_DAY_COLUMN): which step codes it records, as a lookup by code.
IS_OF_KIND = {column: np.array([cl.FIRST_DAY_COLUMN.get(s) == column for s in STEPS])
              for column in dict.fromkeys(cl.FIRST_DAY_COLUMN.values())}
# Per treatment step: the column of `counts` (records.TREATMENT_COUNTERS) it adds to, and its uniforms.
STEP_COUNTER = np.array([TREATMENT_COUNTERS.index(COUNTER_OF_STEP[s]) if s in COUNTER_OF_STEP else 0
                         for s in STEPS], dtype=np.int64)
STEP_WIDTH = np.array([SLOTS[s] if s in cl.TREATMENTS else 1 for s in STEPS], dtype=np.int64)
# Where each treatment's slots start in `Cohort.treatments` (the treatments' uniforms side by side); -1 for the
# steps that are not treatments.
_TREATMENT_START = dict(zip(TREATMENT_UNIFORMS, np.cumsum([0, *(SLOTS[t] for t in TREATMENT_UNIFORMS)]).tolist(),
                            strict=False))
STEP_OFFSET = np.array([_TREATMENT_START.get(s, -1) for s in STEPS], dtype=np.int64)
# A treatment's attempt n reads slot n % width: a bitwise and when every width is a power of two (`slot`).
STEP_WIDTH_MASK = STEP_WIDTH - 1 if all(w & (w - 1) == 0 for w in STEP_WIDTH.tolist()) else None


# Where a patient is in Pathway._patient: the loop she will run next.
DIAGNOSE, TREAT, LADDER, AFTER = 1, 2, 3, 4  # and DONE (0), once she left it


class FastPathway(FastClock):
    """One replication on the fast path. Build it, call `run()`, read `records` and `centers` (resource totals).

    A batch of replications runs as one: pass their cohorts joined (`population.draw_cohorts`) and their sizes
    as `replication_sizes`; `centers_by_replication` then holds each one's resource totals, and the records are
    the replications' rows one after another. Every patient's results are the same as in a run of her own
    replication (patients never interact here); the batch only shares the fixed cost of each numpy step."""

    def __init__(self, scenario: Scenario, cohort: Cohort, replication_sizes: list[int] | None = None) -> None:
        n = cohort.n
        sizes = replication_sizes if replication_sizes is not None else [n]
        if sum(sizes) != n:
            raise ValueError(f"replication sizes {sizes} do not add up to the cohort's {n} patients")
        largest = max(sizes, default=0)
        if not capacity_unlimited(scenario, largest):
            raise ScenarioError(scenario.source_file, "centers.*.resources.*.capacity", "limited",
                                f"every capacity >= {largest} for the fast path")
        self.replication_sizes = sizes
        # Replication (within the batch) of each patient, times the number of (center, resource) groups: added
        # to a resource use's group so that one bincount gives every replication's totals.
        self.group_offset = np.repeat(np.arange(len(sizes), dtype=np.int64) * len(scenario.centers) * N_RES, sizes)
        self.scenario = scenario
        self.cohort = cohort
        self.horizon = scenario.horizon_days
        names = [c.name for c in scenario.centers]
        self.refer = np.array([names.index(c.refers_to) if c.refers_to else -1 for c in scenario.centers])
        self.table = ladder_table(scenario, self.refer.tolist())
        nc = len(names)
        self.nc = nc
        u = cohort.uniforms
        self.u = u
        self.rules = rules = pathway_rules(scenario)
        self.values = rules.many
        delays = rules.delays
        self.delays = delays
        self.booking_of = list(zip(delays.booking_by_center, delays.service_by_center, strict=True))
        self.u_booking = cohort.resource_uniforms("booking")
        self.u_service = cohort.resource_uniforms("service")
        review = delays.prompt_review
        self.review_days = review.ppf(u["booking:0"][:, 0]) if review is not None else None
        treatments = cohort.treatments
        self.u_treat = treatments if treatments is not None else np.hstack([u[t] for t in TREATMENT_UNIFORMS])
        # Patient state (Pathway's PatientState and History, as arrays).
        self.etiology = cohort.etiology.astype(np.int64)
        self.iatrogenic = rules.iatrogenic_by_etiology[self.etiology]
        self.spontaneous = ~self.iatrogenic
        self.severe = cohort.severe.astype(np.int64)
        self.onset = cohort.onset_day
        self.t = np.zeros(n)
        self.t_nat = cohort.natural_resolution_day.astype(np.float64).copy()
        self.since = cohort.onset_day.astype(np.float64).copy()
        self.state = np.zeros(n, dtype=np.int64)
        self.pc = np.full(n, DONE, dtype=np.int8)
        self.uses = np.zeros((N_RES, n), dtype=np.int64)  # resource-major: uses[r] is one resource's counts
        self.counts = np.zeros((n, len(TREATMENT_COUNTERS)), dtype=np.int64)
        self.last_key = np.zeros(n, dtype=np.int64)
        self.scratch = np.zeros(n, dtype=bool)
        self.consultations_before = np.zeros(n, dtype=np.int64)  # before the current center (second opinions)
        # Result columns (records.Records, as arrays); the treatment counters are columns of one matrix, so that a
        # step's counter can be picked per patient.
        self.rec = rec = Records.arrays(n)
        for j, name in enumerate(TREATMENT_COUNTERS):
            setattr(rec, name, self.counts[:, j])
        self._use_keys: list[np.ndarray] = []
        self._use_busy: list[np.ndarray] = []
        self.records: Records | None = None
        self.centers: list[CenterTotals] = []
        self.centers_by_replication: list[list[CenterTotals]] = []

    # ------------------------------------------------------------------------------------------- running
    def run(self) -> None:
        """Settle patients who never reach care (as Pathway.run), then advance everyone else round by round."""
        process, columns = before_care(self.cohort, self.horizon)
        for name, values in columns.items():
            setattr(self.rec, name, values)
        self.processed = process
        self.t[process] = self.cohort.presented_day.compress(process)
        self._init_states(np.flatnonzero(process))
        self.pc[process] = DIAGNOSE
        handlers = ((DIAGNOSE, self._diagnose), (TREAT, self._treat), (LADDER, self._ladder), (AFTER, self._after))
        pc = self.pc
        active = np.flatnonzero(process)  # ascending, as every index array here (sums keep their order)
        while active.size:
            for phase, handler in handlers:
                idx = active.compress(pc[active] == phase)
                if idx.size:
                    handler(idx)
            active = active.compress(pc[active] != DONE)
        self._close()

    def _init_states(self, idx: np.ndarray) -> None:
        c = self.cohort
        combo = (((self.etiology[idx] * (len(LEAK_TYPES) + 1) + (c.leak_type[idx] + 1)) * 2 + c.direct_repair[idx])
                 * 2 + c.slec[idx]) * (len(BERN_CLASSES) + 1) + (c.bern_class[idx] + 1)
        # The codes met, ascending (a count over the few possible codes: cheaper than np.unique's sort of all).
        present = np.flatnonzero(np.bincount(combo))
        sids = []
        for code in present.tolist():
            rest, bern = divmod(code, len(BERN_CLASSES) + 1)
            rest, slec = divmod(rest, 2)
            rest, direct = divmod(rest, 2)
            e, lt = divmod(rest, len(LEAK_TYPES) + 1)
            leak = LEAK_TYPES[lt - 1] if lt > 0 else IATROGENIC_LEAK_TYPE
            sids.append(self.table.intern(cl.History(etiology=ETIOLOGIES[e], leak_type=leak,
                                                     direct_repair=bool(direct), slec=bool(slec),
                                                     bern_class=bern_class_name(bern - 1))))
        state_of_code = np.zeros(present[-1] + 1 if present.size else 0, dtype=np.int64)
        state_of_code[present] = sids
        self.state[idx] = state_of_code[combo]

    def _close(self) -> None:
        """Symptom days to the horizon for everyone still symptomatic, then the result columns and totals."""
        rec = self.rec
        open_ = self.processed & rec.symptomatic_at_end
        prior = rec.symptom_days.compress(open_)
        rec.symptom_days[open_] = np.where(np.isnan(prior), 0.0, prior) + (self.horizon - self.since.compress(open_))
        self.records = self.rec
        keys = np.concatenate(self._use_keys) if self._use_keys else np.zeros(0, dtype=np.int64)
        busy = np.concatenate(self._use_busy) if self._use_busy else np.zeros(0)
        size = self.nc * N_RES
        n_groups = size * len(self.replication_sizes)
        served = np.bincount(keys, minlength=n_groups).tolist()
        busy_days = np.bincount(keys, weights=busy, minlength=n_groups).tolist()
        self.centers_by_replication = []
        for b in range(len(self.replication_sizes)):
            centers = []
            for ci, center in enumerate(self.scenario.centers):
                monitors = []
                for r, name in enumerate(RESOURCES):
                    g = b * size + ci * N_RES + r
                    n_served = int(served[g])
                    monitors.append(ResourceTotals(capacity=center.resources[name].capacity, n_arrived=n_served,
                                                   n_served=n_served, area_busy=float(busy_days[g]),
                                                   waits=np.zeros(n_served)))
                centers.append(CenterTotals(center.name, monitors))
            self.centers_by_replication.append(centers)
        self.centers = self.centers_by_replication[0]

    # ------------------------------------------------------------------------------------------- the pathway
    def _diagnose(self, idx: np.ndarray) -> None:
        """One consultation of Pathway._diagnose (with its brain MRI), then diagnosis, giving up or return."""
        prompt = None if self.review_days is None else self.iatrogenic[idx] & (self.rec.n_consultations[idx] == 0)
        idx = self._use(idx, R_CLINIC, BY_NATURAL, prompt=prompt)
        n = self.rec.n_consultations[idx]
        self.rec.n_consultations[idx] = n + 1
        c = self.rec.center[idx]
        uc = self.u["consultation"][idx, slot(n, "consultation")]
        v = self.values
        suspected = rules.suspected_at_consultation(uc, self.spontaneous[idx], c, 1.0, v)
        self.scratch[idx] = rules.recognized_at_consultation(uc, self.iatrogenic[idx], c, v)
        if some(suspected):
            m_idx = self._use(idx.compress(suspected), R_MRI, BY_NATURAL)
            m = self.rec.n_brain_mri[m_idx]
            self.rec.n_brain_mri[m_idx] = m + 1
            j = slot(m, "mri")
            cm = self.rec.center[m_idx]
            u = self.u
            self.scratch[m_idx] = rules.diagnosed_by_brain_mri(u["mri_sign"][m_idx, j], u["mri_read"][m_idx, j],
                                                               u["mri_despite_normal"][m_idx, j], cm, 1.0, v)
            idx = idx.compress(self.pc[idx] != DONE)
        recognized = self.scratch[idx]
        diagnosed = idx.compress(recognized)
        self.rec.diagnosed_day[diagnosed] = self.t[diagnosed]
        self.pc[diagnosed] = TREAT
        missed = idx.compress(~recognized)
        n = self.rec.n_consultations[missed] - 1
        give_up = rules.gives_up(n + 1 - self.consultations_before[missed], self.rules.max_consultations)
        if some(give_up):
            self._center_gives_up(missed.compress(give_up))
        missed, n = missed.compress(~give_up), n.compress(~give_up)
        back = self.delays.misdiagnosis_return.ppf(self.u["misdiagnosis_return"][missed,
                                                                                  slot(n, "misdiagnosis_return")])
        self._wait(missed, back, BY_NATURAL)

    def _center_gives_up(self, idx: np.ndarray) -> None:
        """Pathway._diagnose when the center gives up: a second opinion at its `refers_to` center (referral delay,
        then consultations there counted afresh), or persistent and undiagnosed."""
        target = self.refer[self.rec.center[idx]]
        n_ref = self.rec.n_referrals[idx]
        seek = rules.seeks_second_opinion(self.u["second_opinion"][idx, slot(n_ref, "second_opinion")], target >= 0,
                                          self.rules.second_opinion_probability)
        self._persist(idx.compress(~seek), R_UNDIAGNOSED)
        idx = idx.compress(seek)
        if not idx.size:
            return
        idx = self._send_on(idx, BY_NATURAL)
        self.consultations_before[idx] = self.rec.n_consultations[idx]

    def _treat(self, idx: np.ndarray) -> None:
        """The conservative window at the start of an episode (Pathway._treat before its loop)."""
        u = self.u["conservative"][idx, slot(self.rec.n_recurrences[idx], "conservative")]
        group = rules.conservative_group(self.etiology[idx], self.severe[idx])
        idx = self._wait(idx, self.delays.conservative(group, u), BY_CONSERVATIVE)
        self.pc[idx] = LADDER

    def _ladder(self, idx: np.ndarray) -> None:
        """One turn of Pathway._treat's loop: persist, refer, or carry out the next step."""
        key = self.state[idx] * self.nc + self.rec.center[idx]
        self.table.ensure(key)
        step = self.table.step[key]
        self._persist(idx.compress(step == C_PERSIST), R_EXHAUSTED)
        refer = step == C_REFER
        if some(refer):
            self._refer(idx.compress(refer))
        act = step > C_REFER
        if some(act):
            self._act(idx.compress(act), key.compress(act))

    def _send_on(self, idx: np.ndarray, by: int) -> np.ndarray:
        """A referral to each center's `refers_to`: counted, its delay waited (a leak closing meanwhile resolves
        `by`), then the patient is at the new center. Returns those still in the pathway."""
        n_ref = self.rec.n_referrals[idx]
        self.rec.n_referrals[idx] = n_ref + 1
        u = self.u["referral"][idx, slot(n_ref, "referral")]
        idx = self._wait(idx, self.delays.referral(self.rec.center[idx], u), by)
        self.rec.center[idx] = self.refer[self.rec.center[idx]]
        return idx

    def _refer(self, idx: np.ndarray) -> None:
        idx = self._send_on(idx, BY_CONSERVATIVE)
        self.state[idx] = self.table.arrive(self.state[idx])
        idx = self._use(idx, R_CLINIC, BY_CONSERVATIVE)
        self.rec.n_consultations[idx] += 1

    def _act(self, idx: np.ndarray, key: np.ndarray) -> None:
        tab = self.table
        team = None
        if self.delays.procedural_patch is not None:
            team = rules.booked_by_procedural_team(tab.step[key] == C_EBP, self.iatrogenic[idx])
        idx = self._use(idx, tab.resource[key], BY_CONSERVATIVE, team=team)
        key = self.state[idx] * self.nc + self.rec.center[idx]
        step = tab.step[key]
        imaging = IS_IMAGING[step]
        if some(imaging):
            im, ki = idx.compress(imaging), key.compress(imaging)
            n_img = self.rec.n_spinal_imaging[im]
            self.rec.n_spinal_imaging[im] = n_img + 1
            control = im.compress(step.compress(imaging) == C_CONTROL_IMAGING)
            if control.size:
                self.rec.n_control_imaging[control] += 1
            found = self.u["imaging"][im, slot(n_img, "imaging")] < tab.imaging_yield[ki]
            self.state[im] = np.where(found, tab.next_found[ki], tab.next_state[ki])
            newly = im.compress(found & ~self.rec.leak_localized[im])
            self.rec.leak_localized[newly] = True
            self.rec.localized_day[newly] = self.t[newly]
            treat = ~imaging
            idx, key, step = idx.compress(treat), key.compress(treat), step.compress(treat)
        if not idx.size:
            return
        t = self.t[idx]
        first = self.rec.first_treatment_day[idx]
        self.rec.first_treatment_day[idx] = np.where(np.isnan(first), t, first)
        for column, is_of_kind in IS_OF_KIND.items():
            of_kind = is_of_kind[step]
            if some(of_kind):
                ki = idx.compress(of_kind)
                days = getattr(self.rec, column)
                prior = days[ki]
                days[ki] = np.where(np.isnan(prior), t.compress(of_kind), prior)
        aimed = IS_DEFINITIVE[step]
        if some(aimed):
            di = idx.compress(aimed)
            prior = self.rec.definitive_treatment_day[di]
            self.rec.definitive_treatment_day[di] = np.where(np.isnan(prior), t.compress(aimed), prior)
        p = tab.p_success[key, np.searchsorted(tab.thresholds, t - self.onset[idx])]
        counter = STEP_COUNTER[step]
        attempt = self.counts[idx, counter]
        self.counts[idx, counter] = attempt + 1
        self.state[idx] = tab.next_state[key]
        success = self._treatment_uniforms(idx, step, attempt) < p
        won = idx.compress(success)
        self._resolve(won, BY_STEP + step.compress(success), t.compress(success))
        self.last_key[won] = key.compress(success)
        self.pc[won] = AFTER
        p_relief = tab.p_relief[key]
        maybe = ~success & (p_relief > 0.0)
        if some(maybe):
            ri, j = idx.compress(maybe), slot(attempt.compress(maybe), "relief")
            relieved = rules.relieved_for_a_while(self.u["relief_occurs"][ri, j], p_relief.compress(maybe))
            if some(relieved):
                self._transient_relief(ri.compress(relieved), j.compress(relieved))

    def _transient_relief(self, idx: np.ndarray, j: np.ndarray) -> None:
        """Pathway._transient_relief: days without symptoms after a blind patch that did not seal, then they return,
        a consultation, and the ladder goes on (a leak closing during the relief resolves at its start)."""
        rec = self.rec
        rec.n_transient_reliefs[idx] += 1
        t, t_nat = self.t[idx], self.t_nat[idx]
        prior = rec.symptom_days[idx]
        rec.symptom_days[idx] = np.where(np.isnan(prior), 0.0, prior) + (t - self.since[idx])
        rec.symptomatic_at_end[idx] = False
        end = t + self.delays.transient_relief.ppf(self.u["relief_days"][idx, j])
        closes = end >= t_nat
        if some(closes):
            # Closed during the relief (dated as SimPy reaches it): the symptoms ended when the relief began.
            ci, start, closed = idx.compress(closes), t.compress(closes), t_nat.compress(closes)
            later = closed > start
            self._freeze(ci.compress(later), start.compress(later) + (closed.compress(later) - start.compress(later)))
            alive = self.pc[ci] != DONE
            ci, start = ci.compress(alive), start.compress(alive)
            self.since[ci] = start
            self.t_nat[ci] = start
            self._resolve(ci, BY_CONSERVATIVE, start)
            self.pc[ci] = DONE
            idx, end = idx.compress(~closes), end.compress(~closes)
        idx = self._freeze(idx, end)
        self.since[idx] = self.t[idx]
        rec.symptomatic_at_end[idx] = True
        idx = self._use(idx, R_CLINIC, BY_CONSERVATIVE)  # the relapse brings her back to the clinic
        rec.n_consultations[idx] += 1

    def _treatment_uniforms(self, idx: np.ndarray, step: np.ndarray, attempt: np.ndarray) -> np.ndarray:
        """u[step][k, attempt % width] per patient: the draw of this attempt at this kind of treatment (one
        gather from the treatments' uniforms side by side, whatever the mix of steps)."""
        within = attempt & STEP_WIDTH_MASK[step] if STEP_WIDTH_MASK is not None else attempt % STEP_WIDTH[step]
        return self.u_treat[idx, STEP_OFFSET[step] + within]

    def _residual(self, idx: np.ndarray, seal_day: np.ndarray, recur_day: np.ndarray) -> None:
        """Pathway._residual: residual symptoms after the seal of a spontaneous leak, to recovery, a recurrence
        (`recur_day`, inf if none) or the horizon."""
        if not idx.size:
            return
        u, r, rec = self.u, self.rules, self.rec
        j = slot(rec.n_recurrences[idx], "residual")
        p = rules.residual_probability(seal_day - self.onset[idx], r.residual_at_90_days, r.residual_odds_ratio)
        has = u["residual_occurs"][idx, j] < p
        if not some(has):
            return
        idx, j, seal_day, recur_day = select(has, idx, j, seal_day, recur_day)
        recovery = self.delays.residual_recovery.ppf(u["residual_recovery"][idx, j])
        days = rules.residual_days_within(seal_day, recovery, np.minimum(recur_day, self.horizon))
        rec.residual_symptoms[idx] = True
        prior = rec.residual_days[idx]
        rec.residual_days[idx] = np.where(np.isnan(prior), days, prior + days)
        rec.residual_at_horizon[idx] = (seal_day + recovery > self.horizon) & (recur_day >= self.horizon)

    def _after(self, idx: np.ndarray) -> None:
        """Pathway._after_success: rebound intracranial hypertension, then a recurrence or the end."""
        tab = self.table
        u = self.u
        success_day = self.t[idx].copy()
        i = slot(self.rec.n_recurrences[idx], "rih")
        key = self.last_key[idx]
        # Whether and when the leak recurs is drawn now (Pathway._after_success): residual symptoms end at it.
        recurs = rules.recurs(u["recurrence_occurs"][idx, i], tab.p_recur[key])
        recur_day = np.full(idx.size, INF)
        recur_day[recurs] = success_day.compress(recurs) + self.delays.recurrence.ppf(
            u["recurrence_delay"][idx.compress(recurs), i.compress(recurs)])
        if self.delays.residual_recovery is not None:
            spont = self.spontaneous[idx]
            self._residual(*select(spont, idx, success_day, recur_day))
        rih = rules.rih_occurs(u["rih_occurs"][idx, i], tab.p_rih[key])
        if some(rih):
            ri, ii = idx.compress(rih), i.compress(rih)
            self.rec.rih[ri] = True
            onset = self.delays.rih_onset.ppf(u["rih_onset"][ri, ii])
            recognized = rules.rih_recognized(u["rih_recognized"][ri, ii], self.rec.center[ri], self.values)
            duration = self.delays.rih_duration(recognized.astype(np.int64), u["rih_duration"][ri, ii])
            days = rules.rih_days_within(success_day.compress(rih) + onset, duration, self.horizon)
            prior = self.rec.rih_days[ri]
            self.rec.rih_days[ri] = np.where(np.isnan(prior), days, prior + days)
            self.rec.n_acetazolamide_courses[ri.compress(recognized)] += 1
            misread = ri.compress(~recognized)
            if misread.size:
                self.rec.rih_misread[misread] = True
                wait = onset.compress(~recognized) > 0.0
                misread_onset = onset.compress(~recognized)
                self._freeze(misread.compress(wait), self.t[misread.compress(wait)] + misread_onset.compress(wait))
                misread = misread.compress(self.pc[misread] != DONE)
                self.t_nat[misread] = INF
                patched = self._use(misread, R_PROCEDURE, BY_CONSERVATIVE)
                self.counts[patched, 0] += 1
                self.state[patched] = tab.misread_ebp(self.state[patched])
            going = self.pc[idx] != DONE
            idx, recurs, recur_day = select(going, idx, recurs, recur_day)
        recur_day = recur_day.compress(recurs)
        self.pc[idx.compress(~recurs)] = DONE
        idx = idx.compress(recurs)
        within = recur_day < self.horizon
        self.pc[idx.compress(~within)] = DONE
        idx, recur_day = idx.compress(within), recur_day.compress(within)
        t = self.t[idx]
        later = recur_day > t
        t_later = t.compress(later)
        self._freeze(idx.compress(later), t_later + (recur_day.compress(later) - t_later))
        idx = idx.compress(self.pc[idx] != DONE)
        self.rec.n_recurrences[idx] += 1
        self.rec.final_state[idx] = F_IN_PATHWAY
        self.rec.resolved_day[idx] = np.nan
        self.rec.resolved_by[idx] = BY_NONE
        self.since[idx] = self.t[idx]
        self.rec.symptomatic_at_end[idx] = True
        self.t_nat[idx] = INF
        self.state[idx] = tab.new_episode(self.state[idx])
        idx = self._use(idx, R_CLINIC, BY_CONSERVATIVE)
        self.rec.n_consultations[idx] += 1
        self.pc[idx] = TREAT
