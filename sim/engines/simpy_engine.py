"""The SimPy engine: one generator per patient walks the care pathway through queues at each center.

This is the hot path. Every random number was drawn up front (`sim.model.population`); clinical choices come
from `sim.model.clinical` (the ladder) and `sim.model.rules` (the rest), the record's columns from
`sim.model.records`; here we only move time forward, queue for resources and write results into preallocated lists.
Consecutive delays are merged into one timeout, and natural resolution is checked against each delay so that a
leak that closes on its own ends the pathway at the right day without an extra event.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np
import simpy

from sim.config.parameters import ETIOLOGIES, IATROGENIC, LEAK_TYPES, RESOURCES, Scenario
from sim.engines.events import Delay
from sim.engines.simpy_resources import CenterState, PathwayDays, PatientState, ResourceUse
from sim.model import clinical as cl
from sim.model import rules
from sim.model.population import Cohort, bern_class_name
from sim.model.randomness import SLOTS
from sim.model.records import (
    BY_CODE,
    BY_CONSERVATIVE,
    BY_NATURAL,
    BY_NONE,
    COUNTER_OF_STEP,
    F_IN_PATHWAY,
    F_PERSISTENT,
    F_RESOLVED,
    R_EXHAUSTED,
    R_UNDIAGNOSED,
    Records,
    before_care,
)
from sim.model.rules import pathway_rules

INF = math.inf
DEFINITIVE = frozenset(cl.DEFINITIVE)
IMAGING_STEPS = frozenset(cl.IMAGING_STEPS)
# What `_diagnose` and `_treat` return besides a diagnosis or a ladder step.
NATURAL_COURSE, CONSERVATIVE, UNDIAGNOSED = "natural_course", "conservative", "undiagnosed"
N_RESOURCES = len(RESOURCES)
R_CLINIC, R_MRI = RESOURCES.index("clinic"), RESOURCES.index("mri")
RESOURCE_INDEX = {r: i for i, r in enumerate(RESOURCES)}
STEP_RESOURCE_INDEX = {step: RESOURCE_INDEX[r] for step, r in cl.STEP_RESOURCE.items()}
S_SERVICE, S_BOOKING = SLOTS["service"], SLOTS["booking"]
ADMISSION_WINDOW_DAYS = 30.0  # patients' processes are started a window of presentation days at a time


class Pathway(ResourceUse):
    """One replication's SimPy model. Build it, call `run()`, read `records`, `monitors` and `events`."""

    def __init__(self, scenario: Scenario, cohort: Cohort, log_events: bool = False, root_seed: int = 0,
                 replication: int = 0) -> None:
        """`root_seed` and `replication` key the streams drawn during the run (the other patients of a
        session-booked resource); the cohort's own draws are already made."""
        self.scenario = scenario
        self.clinical = scenario.clinical
        self.rules = pathway_rules(scenario)
        self.values = self.rules.one
        delays = self.rules.delays
        self.cohort = cohort
        self.horizon = scenario.horizon_days
        self.env = simpy.Environment()
        names = [c.name for c in scenario.centers]
        self.centers = [
            CenterState(self.env, i, c, cohort, names.index(c.refers_to) if c.refers_to else -1, delays,
                        self.horizon, root_seed, replication, self.rules.background_growth_per_year)
            for i, c in enumerate(scenario.centers)
        ]
        self.records = Records.lists(cohort.n)
        # The counter column each treatment step adds to (the lists themselves: `run` keeps them).
        self._counter = {step: getattr(self.records, name) for step, name in COUNTER_OF_STEP.items()}
        self._first_day = {step: getattr(self.records, name) for step, name in cl.FIRST_DAY_COLUMN.items()}
        self.events: list[tuple[int, float, str, str, str]] | None = [] if log_events else None
        # Every completed resource use: (patient, center, resource, request day, start day, end day).
        self.uses: list[tuple[int, str, str, float, float, float]] | None = [] if log_events else None
        u = cohort.uniforms
        self.u = u
        self.days = PathwayDays(cohort, delays)
        self.volume_feedback = self.rules.volume_feedback
        self._symptomatic_since: dict[int, float] = {}
        # Per-patient facts the processes read, as Python lists (an item of a list is cheaper than of an array).
        self._etiology: list[int] = cohort.etiology.tolist()
        self._leak_type: list[int] = cohort.leak_type.tolist()
        self._direct_repair: list[bool] = cohort.direct_repair.tolist()
        self._slec: list[bool] = cohort.slec.tolist()
        self._bern: list[str] = [bern_class_name(b) for b in cohort.bern_class.tolist()]
        self._onset: list[float] = cohort.onset_day.tolist()
        self._generators: list[Generator[Any, Any, None]] = []  # every process's generator, closed after the run

    # ------------------------------------------------------------------------------------------- running
    def run(self) -> None:
        """Settle patients who never reach care without SimPy, admit everyone else as they present, run."""
        c = self.cohort
        rec = self.records
        horizon = self.horizon
        admitted_mask, columns = before_care(c, horizon)
        for name, values in columns.items():
            setattr(rec, name, values.tolist())
        ks = np.flatnonzero(admitted_mask)
        order = ks[np.argsort(c.presented_day[ks], kind="stable")]  # by presentation day, then patient
        admitted = list(zip(c.presented_day[order].tolist(), order.tolist(),
                            c.natural_resolution_day[order].tolist(), strict=True))
        admit = self._admit(admitted)
        self._generators.append(admit)
        self.env.process(admit)
        for center in self.centers:
            for book in center.books:
                if book is not None:
                    sessions = book.process()
                    self._generators.append(sessions)
                    self.env.process(sessions)
        self.env.run(until=horizon)
        self._close(horizon)
        # Patients still in the pathway at the horizon are suspended generators whose frames refer back to this
        # model (model -> env -> event -> process -> generator -> model): a cycle that holds the whole cohort
        # until a full garbage collection, i.e. hundreds of MB over a long run. Closing them breaks it.
        for generator in self._generators:
            generator.close()
        self._generators.clear()

    def _admit(self, admitted: list[tuple[float, int, float]]) -> Generator[Any, Any, None]:
        """Start patients' processes window by window of presentation days (they wait inside their process
        until they present). Starting everyone at day 0 would keep tens of thousands of timeouts in SimPy's
        event heap for the whole run, and every push and pop would pay for its depth."""
        env = self.env
        window = ADMISSION_WINDOW_DAYS
        i = 0
        while i < len(admitted):
            window_start = math.floor(admitted[i][0] / window) * window
            if window_start > env._now:
                yield Delay(env, window_start - env._now)
            window_end = window_start + window
            while i < len(admitted) and admitted[i][0] < window_end:
                t_pres, k, t_nat = admitted[i]
                patient = self._patient(k, t_pres, t_nat)
                self._generators.append(patient)
                env.process(patient)
                i += 1

    def _close(self, horizon: float) -> None:
        rec = self.records
        for center in self.centers:
            for mon in center.monitors:
                mon.advance(horizon)
        for k, since in self._symptomatic_since.items():
            if rec.symptomatic_at_end[k]:
                prior = rec.symptom_days[k]
                rec.symptom_days[k] = (0.0 if math.isnan(prior) else prior) + (horizon - since)

    # ------------------------------------------------------------------------------------------- the pathway
    def _patient(self, k: int, t_present: float, t_nat: float) -> Generator[Any, Any, None]:
        env = self.env
        rec = self.records
        etiology = ETIOLOGIES[self._etiology[k]]
        lt = self._leak_type[k]
        leak_type = LEAK_TYPES[lt] if lt >= 0 else "procedural"
        hist = cl.History(etiology=etiology, leak_type=leak_type, direct_repair=self._direct_repair[k],
                          slec=self._slec[k], bern_class=self._bern[k])
        onset = self._onset[k]
        st = PatientState(k, self.centers[rec.center[k]], hist, t_nat, onset)
        self._symptomatic_since[k] = onset
        if self.events is not None:
            self.events.append((k, t_present, "presented", st.center.name, ""))

        outcome = yield from self._diagnose(st, etiology in IATROGENIC, t_present)
        if outcome == NATURAL_COURSE:
            self._resolve(st, BY_NATURAL, st.t_nat)
            return
        if outcome == UNDIAGNOSED:
            self._persist(st, R_UNDIAGNOSED)
            return
        rec.diagnosed_day[k] = env._now
        if self.events is not None:
            self.log(k, "diagnosed", st.center.name)

        while True:  # one episode of the treatment ladder per loop (a recurrence starts another)
            step = yield from self._treat(st)
            if step == CONSERVATIVE:
                self._resolve(st, BY_CONSERVATIVE, st.t_nat)
                return
            if step == cl.PERSISTENT:
                self._persist(st, R_EXHAUSTED)
                return
            self._resolve(st, BY_CODE[step], env._now)
            recurs = yield from self._after_success(st, step)
            if not recurs:
                return

    def _diagnose(self, st: PatientState, iatrogenic: bool, presented: float) -> Generator[Any, Any, str]:
        """Consultations until the leak is recognized, it closes on its own, or the patient gives up. The first
        booking starts at `presented` (the process starts earlier, when the admission window holding that day opens)."""
        rec = self.records
        k = st.k
        u = self.u
        n_slots = SLOTS["consultation"]
        mri_slots = SLOTS["mri"]
        v = self.values
        while True:
            first = rec.n_consultations[k] == 0
            prompt = None
            if iatrogenic and first and self.days.prompt_review is not None:
                prompt = self.days.prompt_review.item(k)
            seen = yield from self._use(st, R_CLINIC, "consultation", prompt, presented if first else None)
            if not seen:
                return NATURAL_COURSE
            n = rec.n_consultations[k]
            rec.n_consultations[k] = n + 1
            c = st.center.index
            uc = u["consultation"].item(k, n % n_slots)
            recognized = rules.recognized_at_consultation(uc, iatrogenic, c, v)
            if not iatrogenic:
                experience = rules.experience(st.center.spontaneous_seen, self.env._now, self.rules.volume) \
                    if self.volume_feedback else 1.0
                if rules.suspected_at_consultation(uc, True, c, experience, v):
                    m = rec.n_brain_mri[k]
                    imaged = yield from self._use(st, R_MRI, "brain_mri")
                    if not imaged:
                        return NATURAL_COURSE
                    rec.n_brain_mri[k] = m + 1
                    j = m % mri_slots
                    recognized = rules.diagnosed_by_brain_mri(u["mri_sign"].item(k, j), u["mri_read"].item(k, j),
                                                              u["mri_despite_normal"].item(k, j), c, experience, v)
            if recognized:
                if not iatrogenic:
                    st.center.spontaneous_seen.append(self.env._now)
                return "diagnosed"
            if self.events is not None:
                self.log(k, "misdiagnosed", st.center.name)
            if rules.gives_up(n + 1 - st.consultations_before, self.rules.max_consultations):
                refer = st.center.refer_index
                n_ref = rec.n_referrals[k]
                if not rules.seeks_second_opinion(u["second_opinion"].item(k, n_ref % SLOTS["second_opinion"]),
                                                  refer >= 0, self.rules.second_opinion_probability):
                    return UNDIAGNOSED
                wait, back = self._referral_wait(st)
                if wait is not None:
                    yield wait
                if not back:
                    return NATURAL_COURSE
                self._arrive(st, refer)
                st.consultations_before = n + 1
                continue
            wait, back = self._wait(st, self.days.misdiagnosis_return.item(k, n % n_slots))
            if wait is not None:
                yield wait
            if not back:
                return NATURAL_COURSE

    def _referral_wait(self, st: PatientState) -> tuple[Any, bool]:
        """A referral to the center's `refers_to`, counted and logged: what to yield for its delay, and whether the
        leak is still open at its end (`_wait`)."""
        k = st.k
        n_ref = self.records.n_referrals[k]
        self.records.n_referrals[k] = n_ref + 1
        if self.events is not None:
            self.log(k, "referred", st.center.name)
        return self._wait(st, st.center.referral_delay.item(k, n_ref % SLOTS["referral"]))

    def _arrive(self, st: PatientState, center_index: int) -> None:
        st.center = self.centers[center_index]
        self.records.center[st.k] = center_index

    def _treat(self, st: PatientState) -> Generator[Any, Any, str]:
        """One episode of the ladder: conservative care, then steps until one works or none is left.
        Returns the successful step, CONSERVATIVE (closed on its own), or clinical.PERSISTENT."""
        env = self.env
        rec = self.records
        k = st.k
        h = st.hist
        u = self.u
        cln = self.clinical
        onset = self._onset[k]
        iatrogenic = h.etiology in IATROGENIC
        team_booking = self.days.procedural_patch
        wait, ok = self._wait(st, self.days.conservative.item(k, h.recurrences % SLOTS["conservative"]))
        if wait is not None:
            yield wait
        if not ok:
            return CONSERVATIVE
        while True:
            center = st.center
            profile = center.profile
            step = cl.next_step(h, profile, center.refer_index >= 0, cln)
            if step == cl.PERSISTENT:
                return step
            if step == cl.REFER:
                wait, ok = self._referral_wait(st)
                if wait is not None:
                    yield wait
                if not ok:
                    return CONSERVATIVE
                self._arrive(st, center.refer_index)
                h.arrive_at_new_center()
                if h.etiology == "spontaneous":
                    st.center.spontaneous_seen.append(env._now)
                seen = yield from self._use(st, R_CLINIC, "consultation")
                if not seen:
                    return CONSERVATIVE
                rec.n_consultations[k] += 1
                continue
            r = STEP_RESOURCE_INDEX[step]
            booking = None
            if team_booking is not None and rules.booked_by_procedural_team(step == cl.EBP, iatrogenic):
                booking = team_booking.item(k, st.uses[r] % S_BOOKING)
            done = yield from self._use(st, r, step, booking)
            if not done:
                return CONSERVATIVE
            if step in IMAGING_STEPS:
                n_img = rec.n_spinal_imaging[k]
                rec.n_spinal_imaging[k] = n_img + 1
                if step == cl.IMAGING_CONTROL:
                    rec.n_control_imaging[k] += 1
                found = u["imaging"].item(k, n_img % SLOTS["imaging"]) < cl.imaging_yield(step, h, profile, cln)
                cl.record_imaging(h, profile, found, step)
                if found and not rec.leak_localized[k]:
                    rec.leak_localized[k] = True
                    rec.localized_day[k] = env._now
                continue
            if math.isnan(rec.first_treatment_day[k]):
                rec.first_treatment_day[k] = env._now
            if step in DEFINITIVE and math.isnan(rec.definitive_treatment_day[k]):
                rec.definitive_treatment_day[k] = env._now
            first_of_kind = self._first_day[step]
            if math.isnan(first_of_kind[k]):
                first_of_kind[k] = env._now
            p = cl.success_probability(step, h, profile, cln, env._now - onset)
            if self.volume_feedback and step in rules.EXPERIENCE_SCALES_SUCCESS:
                p *= rules.experience(center.spontaneous_seen, env._now, self.rules.volume)
            attempt = self._count_treatment(k, step)
            cl.record_step(h, step, profile, cln)
            draws = u[step]
            if draws.item(k, attempt % draws.shape[1]) < p:
                return step
            p_relief = cl.transient_relief_probability(step, h, cln)
            if p_relief > 0.0:
                j = attempt % SLOTS["relief"]
                if rules.relieved_for_a_while(u["relief_occurs"].item(k, j), p_relief):
                    ok = yield from self._transient_relief(st, self.days.transient_relief.item(k, j))
                    if not ok:
                        return CONSERVATIVE

    def _transient_relief(self, st: PatientState, days: float) -> Generator[Any, Any, bool]:
        """A blind patch that did not seal relieved the symptoms: `days` without them, then they return (a relapse):
        back to the clinic, and the ladder goes on. False if the leak closed on its own first: during the relief
        (the symptoms then ended when it began: `st.t_nat` is set to that day) or before the clinic saw her."""
        env = self.env
        rec = self.records
        k = st.k
        rec.n_transient_reliefs[k] += 1
        start = env._now
        prior = rec.symptom_days[k]
        rec.symptom_days[k] = (0.0 if math.isnan(prior) else prior) + (start - self._symptomatic_since[k])
        rec.symptomatic_at_end[k] = False
        wait, ok = self._wait(st, days)
        if wait is not None:
            yield wait
        if not ok:
            st.t_nat = start
            self._symptomatic_since[k] = start
            return False
        self._symptomatic_since[k] = env._now
        rec.symptomatic_at_end[k] = True
        if self.events is not None:
            self.log(k, "relapse", st.center.name)
        seen = yield from self._use(st, R_CLINIC, "consultation")
        if seen:
            rec.n_consultations[k] += 1
        return seen

    def _count_treatment(self, k: int, step: str) -> int:
        """Increment the patient's counter for this kind of treatment; return the attempt index (0-based)."""
        column = self._counter[step]
        n = column[k]
        column[k] = n + 1
        return n

    def _after_success(self, st: PatientState, step: str) -> Generator[Any, Any, bool]:
        """Rebound intracranial hypertension and recurrence after a successful step. True if the leak recurs
        within the horizon (the caller then starts a new episode)."""
        env = self.env
        rec = self.records
        k = st.k
        h = st.hist
        u = self.u
        cln = self.clinical
        n_rih_slots = SLOTS["rih"]
        success_day = env._now
        i = h.recurrences % n_rih_slots
        # Whether and when the leak recurs is drawn now: residual symptoms end at a recurrence.
        recurs = rules.recurs(u["recurrence_occurs"].item(k, i), cl.recurrence_probability(step, h, cln))
        recur_day = success_day + self.days.recurrence.item(k, i) if recurs else INF
        if self.days.residual_recovery is not None and h.etiology == cl.SPONTANEOUS:
            self._residual(k, h.recurrences % SLOTS["residual"], success_day, recur_day)
        if rules.rih_occurs(u["rih_occurs"].item(k, i), cl.rih_probability(step, h, cln)):
            rec.rih[k] = True
            onset = self.days.rih_onset.item(k, i)
            recognized = rules.rih_recognized(u["rih_recognized"].item(k, i), st.center.index, self.values)
            duration = (self.days.rih_treated if recognized else self.days.rih_untreated).item(k, i)
            start = success_day + onset
            rih_days = float(rules.rih_days_within(start, duration, self.horizon))
            prior = rec.rih_days[k]
            rec.rih_days[k] = rih_days if math.isnan(prior) else prior + rih_days
            if self.events is not None and start < self.horizon:
                self.events.append((k, start, "rih_start", st.center.name, ""))
            if recognized:
                rec.n_acetazolamide_courses[k] += 1
            else:
                # Read as a return of low-pressure headache: one needless blood patch, RIH left untreated.
                rec.rih_misread[k] = True
                if onset > 0.0:
                    yield Delay(env, onset)
                st.t_nat = INF
                done = yield from self._use(st, RESOURCE_INDEX["procedure_room"], "ebp_for_misread_rih")
                if done:
                    rec.n_ebp[k] += 1
                    cl.record_needless_ebp(h)
        if not recurs:
            return False
        if recur_day >= self.horizon:
            return False
        if recur_day > env._now:
            yield Delay(env, recur_day - env._now)
        # Symptoms are back: the patient is in the pathway again and returns to her current center.
        rec.n_recurrences[k] += 1
        rec.final_state[k] = F_IN_PATHWAY
        rec.resolved_day[k] = math.nan
        rec.resolved_by[k] = BY_NONE
        self._symptomatic_since[k] = env._now
        rec.symptomatic_at_end[k] = True
        st.t_nat = INF  # a recurred leak is not assumed to close on its own
        h.start_new_episode()
        if self.events is not None:
            self.log(k, "recurrence", st.center.name)
        seen = yield from self._use(st, R_CLINIC, "consultation")
        if seen:
            rec.n_consultations[k] += 1
        return True

    def _residual(self, k: int, j: int, seal_day: float, recur_day: float) -> None:
        """Residual symptoms after the seal of a spontaneous leak (`rules.residual_probability`), to recovery, a
        recurrence or the horizon."""
        rules_ = self.rules
        p = rules.residual_probability(seal_day - self._onset[k], rules_.residual_at_90_days,
                                       rules_.residual_odds_ratio)
        if not self.u["residual_occurs"].item(k, j) < p:
            return
        rec = self.records
        recovery = self.days.residual_recovery.item(k, j)
        days = float(rules.residual_days_within(seal_day, recovery, min(recur_day, self.horizon)))
        rec.residual_symptoms[k] = True
        prior = rec.residual_days[k]
        rec.residual_days[k] = days if math.isnan(prior) else prior + days
        rec.residual_at_horizon[k] = seal_day + recovery > self.horizon and recur_day >= self.horizon

    def _resolve(self, st: PatientState, by: int, day: float) -> None:
        """Symptoms end on `day`, resolved as `by` says (a code of records.RESOLVED_BY)."""
        rec = self.records
        k = st.k
        rec.final_state[k] = F_RESOLVED
        rec.resolved_by[k] = by
        rec.resolved_day[k] = day
        if math.isnan(rec.first_resolved_day[k]):
            rec.first_resolved_day[k] = day
        since = self._symptomatic_since[k]
        prior = rec.symptom_days[k]
        rec.symptom_days[k] = (0.0 if math.isnan(prior) else prior) + (day - since)
        rec.symptomatic_at_end[k] = False
        if self.events is not None:
            self.events.append((k, day, "resolved", st.center.name, ""))

    def _persist(self, st: PatientState, reason: int) -> None:
        """Symptoms last: the patient leaves the pathway for the reason given (a code of PERSISTENT_REASONS)."""
        rec = self.records
        rec.final_state[st.k] = F_PERSISTENT
        rec.persistent_reason[st.k] = reason
        rec.symptomatic_at_end[st.k] = True
        if self.events is not None:
            self.log(st.k, "persistent", st.center.name)
