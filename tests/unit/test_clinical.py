"""Unit tests of the clinical rules, one etiology branch at a time, without SimPy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.config.parameters import BERN_CLASSES, LEAK_TYPES
from sim.config.scenario import load_scenario
from sim.model import clinical as cl
from sim.model import rules
from tests.helpers import LOW_VOLUME


@pytest.fixture(scope="module")
def sc():
    return load_scenario(LOW_VOLUME)


@pytest.fixture(scope="module")
def exp(sc):
    return sc.center("specialist").profile


@pytest.fixture(scope="module")
def low(sc):
    return sc.center("district").profile


def walk(h, profile, clinical, can_refer=False, found=False, limit=30):
    """Follow the ladder assuming every step fails (and imaging finds the leak if `found`)."""
    steps = []
    for _ in range(limit):
        step = cl.next_step(h, profile, can_refer, clinical)
        steps.append(step)
        if step in (cl.PERSISTENT, cl.REFER):
            return steps
        if step in cl.IMAGING_STEPS:
            cl.record_imaging(h, profile, found, step)
        else:
            cl.record_step(h, step, profile, clinical)
    raise AssertionError(f"ladder did not end: {steps}")


def test_post_lp_ladder_at_experienced_center(sc, exp):
    h = cl.History("post_lp", "procedural")
    assert walk(h, exp, sc.clinical) == ["ebp", "ebp", "ebp", "fibrin_patch", "durotomy_repair", "persistent"]


def test_post_lp_refers_for_fibrin_patch_from_low_volume(sc, low):
    h = cl.History("post_lp", "procedural")
    assert walk(h, low, sc.clinical, can_refer=True) == ["ebp", "ebp", "ebp", "refer"]


def test_post_lp_without_referral_skips_fibrin(sc, low):
    h = cl.History("post_lp", "procedural")
    assert walk(h, low, sc.clinical) == ["ebp", "ebp", "ebp", "durotomy_repair", "persistent"]


def test_spinal_surgery_tear_goes_straight_to_repair_when_drawn(sc, exp):
    h = cl.History("spinal_surgery", "procedural", direct_repair=True)
    assert walk(h, exp, sc.clinical) == ["durotomy_repair", "ebp", "persistent"]
    h = cl.History("spinal_surgery", "procedural", direct_repair=False)
    assert walk(h, exp, sc.clinical) == ["ebp", "durotomy_repair", "persistent"]


def test_spontaneous_ventral_tear_found_by_refined_imaging(sc, exp):
    h = cl.History("spontaneous", "ventral_dural_tear", slec=True)
    assert walk(h, exp, sc.clinical, found=True) == [
        "ebp", "spinal_imaging", "targeted_patch", "fibrin_patch", "surgery", "control_spinal_imaging", "surgery",
        "persistent"]


def test_spontaneous_negative_refined_imaging_ends_in_persistent(sc, exp):
    h = cl.History("spontaneous", "indeterminate", slec=True)
    assert walk(h, exp, sc.clinical, found=False) == ["ebp", "spinal_imaging", "repeat_spinal_imaging", "ebp",
                                                      "ebp", "persistent"]
    assert h.imaging_repeats == 1  # one repeat (profile.repeat_refined_imaging), then two blind patches


def test_blind_patch_limits_are_the_centers(sc, exp, low):
    """Practice differs: each profile says how many blind patches come before imaging and after a negative one."""
    assert (exp.blind_ebp_before_imaging, exp.blind_ebp_after_negative_imaging) == (1, 2)
    assert (low.blind_ebp_before_imaging, low.blind_ebp_after_negative_imaging) == (2, 2)
    none_first = dataclasses.replace(exp, blind_ebp_before_imaging=0, blind_ebp_after_negative_imaging=3,
                                     repeat_refined_imaging=0)
    assert walk(cl.History("spontaneous", "indeterminate"), none_first, sc.clinical) == [
        "spinal_imaging", "ebp", "ebp", "ebp", "persistent"]
    # procedure-related leaks keep the clinical rule's limit at every center
    assert walk(cl.History("post_lp", "procedural"), none_first, sc.clinical)[:3] == ["ebp", "ebp", "ebp"]


def test_a_recurrence_after_negative_imaging_does_not_restart_blind_patches(sc, low):
    h = cl.History("spontaneous", "indeterminate")
    assert walk(h, low, sc.clinical)[:3] == ["ebp", "ebp", "spinal_imaging"]
    h.start_new_episode()
    # imaged already: the conventional study was negative, so the refined one comes next (no blind patch first)
    no_refer = with_policy(low, when_not_offered=False)
    assert walk(h, no_refer, sc.clinical) == ["ebp", "ebp", "persistent"]
    assert h.ebp_episode == 0 and h.ebp_after_negative == 2


def test_cvf_found_goes_to_embolization_then_ligation(sc, exp):
    h = cl.History("spontaneous", "csf_venous_fistula")  # SLEC-: imaging first at a center with a spine MRI
    assert walk(h, exp, sc.clinical, found=True) == [
        "spinal_imaging", "embolization", "control_spinal_imaging", "surgery", "control_spinal_imaging", "surgery",
        "persistent"]


def test_low_volume_negative_conventional_imaging_refers_for_refined(sc, low):
    h = cl.History("spontaneous", "csf_venous_fistula")
    assert walk(h, low, sc.clinical, can_refer=True, found=False) == ["ebp", "ebp", "spinal_imaging", "refer"]
    # at the specialist center the next step is refined imaging, not a repeat of the conventional study
    assert cl.next_step(h, load_scenario(LOW_VOLUME).center("specialist").profile, False, sc.clinical) == \
        cl.IMAGING_REFINED


def test_low_volume_found_ventral_tear_refers_for_targeted_patch(sc, low):
    h = cl.History("spontaneous", "ventral_dural_tear")
    assert walk(h, low, sc.clinical, can_refer=True, found=True) == ["ebp", "ebp", "spinal_imaging", "refer"]


def test_ebp_first_and_repeat_success(sc):
    h = cl.History("post_lp", "procedural")
    assert cl.ebp_success_probability(h, sc.clinical) == 0.75
    h.ebp_total = 1
    assert cl.ebp_success_probability(h, sc.clinical) == sc.clinical.ebp_repeat_success["post_lp"]
    cvf = cl.History("spontaneous", "csf_venous_fistula")
    assert cl.ebp_success_probability(cvf, sc.clinical) == sc.clinical.ebp_first_success["csf_venous_fistula"]


def test_blind_patch_success_follows_the_true_leak_type(sc):
    """A ventral tear is seldom sealed by a blind patch (Piechowiak 2023); a leak type without an entry of its
    own (indeterminate) takes the etiology's value."""
    c = sc.clinical
    tear = cl.History("spontaneous", "ventral_dural_tear", slec=True)
    unseen = cl.History("spontaneous", "indeterminate", slec=True)
    assert cl.ebp_success_probability(tear, c) == c.ebp_first_success["ventral_dural_tear"] == 0.30
    assert cl.ebp_success_probability(unseen, c) == c.ebp_first_success["spontaneous"]
    tear.ebp_total = unseen.ebp_total = 1
    assert cl.ebp_success_probability(tear, c) == c.ebp_repeat_success["ventral_dural_tear"]
    assert cl.ebp_success_probability(unseen, c) == c.ebp_repeat_success["spontaneous"]
    # without extradural CSF a blind patch seldom works (Farb 2019), whatever the type; a fistula has its own
    dry = cl.History("spontaneous", "indeterminate", slec=False)
    assert cl.ebp_success_probability(dry, c) == c.ebp_first_success["slec_negative"] == 0.15
    assert cl.ebp_success_probability(cl.History("spontaneous", "csf_venous_fistula"), c) == \
        c.ebp_first_success["csf_venous_fistula"]


def test_an_early_patch_of_a_procedure_related_leak_fails_more(sc, exp):
    """Within the early window the odds of failure are multiplied by the odds ratio (Swiss cohort OR 0.20 for a
    patch > 48 h after the puncture); a spontaneous leak's patch does not depend on timing."""
    c = sc.clinical
    h = cl.History("epidural", "procedural")
    late = cl.success_probability(cl.EBP, h, exp, c, c.early_ebp_threshold_days + 0.01)
    early = cl.success_probability(cl.EBP, h, exp, c, c.early_ebp_threshold_days)
    assert late == c.ebp_first_success["epidural"] == 0.73
    odds = lambda p: p / (1 - p)  # noqa: E731
    assert odds(early) == pytest.approx(odds(late) / c.early_ebp_failure_odds_ratio)
    spo = cl.History("spontaneous", "indeterminate")
    assert cl.success_probability(cl.EBP, spo, exp, c, 0.5) == cl.success_probability(cl.EBP, spo, exp, c, 50)
    assert cl.with_failure_odds(1.0, 5.0) == 1.0 and cl.with_failure_odds(0.0, 5.0) == 0.0


def test_success_is_constant_within_each_time_band(sc, exp):
    """The fast path tabulates success per band of `time_thresholds`; the rule must agree at any day."""
    c = sc.clinical
    bounds = cl.time_thresholds(c)
    assert list(bounds) == sorted(set(bounds)) and c.early_ebp_threshold_days in bounds
    edges = [0.0, *bounds]
    for etiology, leak in (("epidural", "procedural"), ("spontaneous", "ventral_dural_tear")):
        h = cl.History(etiology, leak)
        for step in (cl.EBP, cl.LEAK_SURGERY):
            for lo, hi in zip(edges, [*bounds, 10 * bounds[-1]], strict=True):
                inside = [lo + (hi - lo) * f for f in (0.01, 0.5, 1.0)]
                values = {cl.success_probability(step, h, exp, c, d) for d in inside}
                assert len(values) == 1, (etiology, step, lo, hi, values)

def test_late_definitive_treatment_splits_the_source_average(sc, exp):
    """Each definitive treatment's input is its source cohort's average; with a late odds ratio the early and late
    probabilities mix back to it at the source's late share, so the delay effect is not counted twice."""
    c = dataclasses.replace(sc.clinical, late_treatment_odds_ratio=0.5)
    thr = c.late_treatment_threshold_days
    tear, cvf = cl.History("spontaneous", "ventral_dural_tear"), cl.History("spontaneous", "csf_venous_fistula")
    for step, h, source, key in ((cl.LEAK_SURGERY, tear, exp.leak_surgery_success, "surgery"),
                                 (cl.LEAK_SURGERY, cvf, c.cvf_ligation_success, "surgery"),
                                 (cl.TARGETED_PATCH, tear, c.targeted_patch_success, "targeted_patch"),
                                 (cl.FIBRIN_PATCH, tear, c.fibrin_patch_success_spontaneous, "fibrin_patch"),
                                 (cl.EMBOLIZATION, cvf, c.embolization_success, "embolization")):
        early = cl.success_probability(step, h, exp, c, thr)
        late = cl.success_probability(step, h, exp, c, thr + 1)
        share = c.late_share_in_source[key]
        assert early > late and (1 - share) * early + share * late == pytest.approx(source, abs=1e-12)
        assert (late / (1 - late)) / (early / (1 - early)) == pytest.approx(0.5)
    # the shipped default puts the delay effect in residual symptoms only: the seal does not depend on timing
    assert sc.clinical.late_treatment_odds_ratio == 1.0
    assert cl.success_probability(cl.LEAK_SURGERY, tear, exp, sc.clinical, 10) == \
        cl.success_probability(cl.LEAK_SURGERY, tear, exp, sc.clinical, 1000) == exp.leak_surgery_success
    # procedure-related repairs and fibrin patches do not take the spontaneous-leak timing rule
    post_lp = cl.History("post_lp", "procedural")
    assert cl.success_probability(cl.FIBRIN_PATCH, post_lp, exp, c, 1000) == c.fibrin_patch_success_iatrogenic


def test_a_failed_operation_is_revised_once(sc, exp):
    h = cl.History("spontaneous", "ventral_dural_tear", leak_found=True)
    assert sc.clinical.max_leak_surgeries == 2
    assert walk(h, exp, sc.clinical, found=True) == ["targeted_patch", "fibrin_patch", "surgery",
                                                     "control_spinal_imaging", "surgery", "persistent"]


def test_cvf_surgery_uses_ligation_success(sc, exp):
    h = cl.History("spontaneous", "csf_venous_fistula")
    assert cl.success_probability(cl.LEAK_SURGERY, h, exp, sc.clinical, 10) == sc.clinical.cvf_ligation_success


def test_rih_and_recurrence_probabilities(sc):
    c = sc.clinical
    iat = cl.History("post_lp", "procedural")
    spo = cl.History("spontaneous", "ventral_dural_tear")
    assert cl.rih_probability(cl.EBP, iat, c) == c.rih_probability_after_iatrogenic_ebp
    assert cl.rih_probability(cl.LEAK_SURGERY, spo, c) == c.rih_probability_after_spontaneous_sealing
    assert cl.rih_probability(cl.EMBOLIZATION, spo, c) == c.rih_probability_after_embolization
    assert cl.recurrence_probability(cl.LEAK_SURGERY, spo, c) == c.recurrence_probability_after_surgery
    assert cl.recurrence_probability(cl.EBP, spo, c) == c.recurrence_probability_after_spontaneous_patch
    spo.recurrences = c.max_recurrences
    assert cl.recurrence_probability(cl.EBP, spo, c) == 0.0


def test_new_episode_resets_attempts_but_keeps_imaging(sc, exp):
    h = cl.History("spontaneous", "ventral_dural_tear")
    walk(h, exp, sc.clinical, found=True)
    h.start_new_episode()
    assert h.leak_found and h.recurrences == 1
    # the last step was a failed operation: the known site is imaged again, then the ladder starts over
    assert cl.next_step(h, exp, False, sc.clinical) == cl.IMAGING_CONTROL
    cl.record_imaging(h, exp, True, cl.IMAGING_CONTROL)
    assert cl.next_step(h, exp, False, sc.clinical) == cl.TARGETED_PATCH


def test_center_without_imaging_or_referral_goes_on_with_blind_patches(sc, low):
    no_imaging = dataclasses.replace(low, offers_spinal_imaging=False)
    h = cl.History("spontaneous", "ventral_dural_tear")
    assert walk(h, no_imaging, sc.clinical) == ["ebp", "ebp", "ebp", "ebp", "persistent"]  # 2 before, 2 after


def with_policy(profile, **policy):
    return dataclasses.replace(profile, referral=dataclasses.replace(profile.referral, **policy))


def test_policy_refer_at_diagnosis(sc, low):
    p = with_policy(low, at_diagnosis=True)
    assert cl.next_step(cl.History("spontaneous", "indeterminate"), p, True, sc.clinical) == cl.REFER
    assert cl.next_step(cl.History("post_lp", "procedural"), p, True, sc.clinical) == cl.EBP
    assert cl.next_step(cl.History("spontaneous", "indeterminate"), p, False, sc.clinical) == cl.EBP


def test_policy_refer_after_k_failed_blood_patches(sc, low):
    p = with_policy(low, after_failed_ebp=1)
    h = cl.History("spontaneous", "ventral_dural_tear")
    assert walk(h, p, sc.clinical, can_refer=True) == ["ebp", "refer"]
    h2 = cl.History("post_lp", "procedural")
    assert walk(h2, with_policy(low, after_failed_ebp=2), sc.clinical, can_refer=True) == ["ebp", "ebp", "refer"]


def test_policy_refer_when_imaging_negative_at_a_refined_center(sc, exp):
    p = with_policy(exp, when_imaging_negative=True)
    h = cl.History("spontaneous", "indeterminate", slec=True)
    assert walk(h, p, sc.clinical, can_refer=True, found=False) == ["ebp", "spinal_imaging", "refer"]
    # on arrival elsewhere the 'here' counters restart, the knowledge stays
    h.arrive_at_new_center()
    assert h.imaged and not h.imaged_here and h.steps_here == 0


def test_patient_groups_match_etiology_and_a_localized_leak_type_only():
    cvf = cl.History("spontaneous", "csf_venous_fistula")
    assert cl.in_groups(cvf, ("all",)) and cl.in_groups(cvf, ("spontaneous",))
    assert not cl.in_groups(cvf, ("iatrogenic",)) and not cl.in_groups(cvf, ("post_lp", "epidural"))
    assert not cl.in_groups(cvf, ("csf_venous_fistula",))  # the true type is not known before imaging finds it
    cvf.leak_found = True
    assert cl.in_groups(cvf, ("csf_venous_fistula",)) and not cl.in_groups(cvf, ("ventral_dural_tear",))
    for etiology in ("post_lp", "epidural", "spinal_surgery"):
        assert cl.in_groups(cl.History(etiology, "procedural"), ("iatrogenic",))
        assert not cl.in_groups(cl.History(etiology, "procedural"), ("spontaneous",))


def test_each_policy_applies_to_its_groups_only(sc, low, exp):
    spontaneous_only = ("spontaneous",)
    p = with_policy(low, after_failed_ebp=1, after_failed_ebp_for=spontaneous_only)
    assert walk(cl.History("spontaneous", "ventral_dural_tear"), p, sc.clinical, can_refer=True) == ["ebp", "refer"]
    assert walk(cl.History("post_lp", "procedural"), p, sc.clinical,
                can_refer=True)[:3] == ["ebp", "ebp", "ebp"]  # post-LP keeps its three blind patches here
    at_dx = with_policy(low, at_diagnosis=True, at_diagnosis_for=("iatrogenic",))
    assert cl.next_step(cl.History("epidural", "procedural"), at_dx, True, sc.clinical) == cl.REFER
    assert cl.next_step(cl.History("spontaneous", "indeterminate"), at_dx, True, sc.clinical) == cl.EBP
    negative = with_policy(exp, when_imaging_negative=True, when_imaging_negative_for=("post_lp",))
    # not referred: the ladder goes on here (a repeat study, then blind patches)
    assert walk(cl.History("spontaneous", "indeterminate", slec=True), negative, sc.clinical, can_refer=True,
                found=False)[:4] == ["ebp", "spinal_imaging", "repeat_spinal_imaging", "ebp"]
    # a step the district does not offer: referred only within the group, skipped for the others
    cvf_only = with_policy(low, when_not_offered_for=("csf_venous_fistula",))
    assert "refer" not in walk(cl.History("post_lp", "procedural"), cvf_only, sc.clinical, can_refer=True)
    assert walk(cl.History("post_lp", "procedural"), low, sc.clinical, can_refer=True)[-1] == "refer"


def test_policy_never_refer_skips_steps_not_offered(sc, low):
    p = with_policy(low, when_not_offered=False)
    h = cl.History("post_lp", "procedural")
    assert walk(h, p, sc.clinical, can_refer=True) == ["ebp", "ebp", "ebp", "durotomy_repair", "persistent"]


def test_top_level_referral_tables_set_the_center_policy(write_toml):
    path = write_toml("""
        [centers.district]
        profile = "low_volume"
        catchment_share = 1.0
        [centers.specialist]
        profile = "experienced"
        [referral.district]
        to = "specialist"
        after_failed_ebp = 2
        delay_days = { family = "fixed", value = 10.0 }
    """)
    c = load_scenario(path).center("district")
    assert c.refers_to == "specialist" and c.profile.referral.after_failed_ebp == 2
    assert c.profile.referral_delay_days.mean == 10.0


def test_residual_symptoms_grow_with_the_delay_to_the_seal(sc):
    """logit p = logit p90 + ln(OR) log2(d / 90) (Scutelnic 2025, fitted by tools/derive_residual_symptoms.py)."""
    c = sc.clinical
    p90, odds_ratio = c.residual_probability_at_90_days, c.residual_odds_ratio_per_doubling
    days = np.array([30.0, 90.0, 180.0, 365.0, 730.0])
    p = rules.residual_probability(days, p90, odds_ratio)
    assert p[1] == pytest.approx(p90) and (np.diff(p) > 0).all()
    odds = p / (1 - p)
    assert odds[2] / odds[1] == pytest.approx(odds_ratio)  # one doubling of the delay
    # the one-patient call (SimPy engine) gives the many-patient value (fast path)
    assert float(rules.residual_probability(365.0, p90, odds_ratio)) == pytest.approx(p[3], abs=0, rel=0)
    assert rules.residual_probability(10.0, 0.0, 2.0) == 0.0
    assert rules.residual_probability(10.0, 1.0, 2.0) == 1.0
    assert rules.residual_days_within(100.0, 50.0, 120.0) == 20.0  # cut at a recurrence or the horizon
    assert rules.residual_days_within(100.0, 50.0, 400.0) == 50.0


def test_an_early_spine_mri_sends_slec_negative_leaks_to_imaging_first(sc, exp, low):
    """Farb 2019: SLEC- leaks (fistulas, leaks imaging does not localize) were not effectively treated by a blind
    patch, so a center with an early spine MRI images them first; SLEC+ leaks get its blind patch. A center
    without one patches every leak first."""
    assert exp.early_spine_mri and not low.early_spine_mri
    fistula = cl.History("spontaneous", "csf_venous_fistula", slec=False)
    assert walk(fistula, exp, sc.clinical, found=True)[:2] == ["spinal_imaging", "embolization"]
    tear = cl.History("spontaneous", "ventral_dural_tear", slec=True)
    assert walk(tear, exp, sc.clinical, found=True)[:2] == ["ebp", "spinal_imaging"]
    unseen = cl.History("spontaneous", "indeterminate", slec=False)
    assert walk(unseen, exp, sc.clinical) == ["spinal_imaging", "repeat_spinal_imaging", "ebp", "ebp", "persistent"]


def test_a_negative_refined_study_is_repeated_with_its_own_yield(sc, exp, low):
    """Another refined technique after a negative one (other side, phase, CT myelography) finds some of what the
    first missed: its own yield by leak type; a center without refined imaging does not repeat."""
    # The Bern score switched off: the yields are the published ones.
    c = dataclasses.replace(sc.clinical, imaging_odds_ratio_by_bern=dict.fromkeys(BERN_CLASSES, 1.0))
    h = cl.History("spontaneous", "csf_venous_fistula", bern_class="low")
    assert cl.imaging_yield(cl.IMAGING, h, exp, c) == c.imaging_yield["refined"]["csf_venous_fistula"]
    assert cl.imaging_yield(cl.IMAGING_REPEAT, h, exp, c) == cl.repeat_yield(
        "refined", exp.repeat_imaging_technique, "csf_venous_fistula", c) > c.repeat_imaging_yield["csf_venous_fistula"]
    c = sc.clinical
    assert walk(cl.History("spontaneous", "csf_venous_fistula"), exp, sc.clinical, found=False)[:2] == [
        "spinal_imaging", "repeat_spinal_imaging"]
    assert not cl.offers(low, cl.IMAGING_REPEAT) and low.repeat_refined_imaging == 0
    # found on the repeat: the ladder goes on to the fistula's treatment
    h = cl.History("spontaneous", "csf_venous_fistula")
    cl.record_imaging(h, exp, False, cl.IMAGING)
    assert cl.next_step(h, exp, False, c) == cl.IMAGING_REPEAT
    cl.record_imaging(h, exp, True, cl.IMAGING_REPEAT)
    assert cl.next_step(h, exp, False, c) == cl.EMBOLIZATION
    assert walk(cl.History("spontaneous", "csf_venous_fistula"), low, sc.clinical, can_refer=True)[:3] == [
        "ebp", "ebp", "spinal_imaging"]


def test_a_blind_patch_that_does_not_seal_relieves_for_a_while_by_the_same_leak_key(sc):
    """Short-term relief apart from durable relief (Piechowiak 2023: 88% short term, 33% long term): the transient
    share reads the blind-patch tables' key of the leak; other steps and procedure-related leaks have none."""
    c = sc.clinical
    cases = {("spontaneous", "ventral_dural_tear", True): "ventral_dural_tear",
             ("spontaneous", "indeterminate", True): "spontaneous",
             ("spontaneous", "indeterminate", False): "slec_negative",
             ("spontaneous", "meningeal_diverticulum", False): "slec_negative",
             ("spontaneous", "csf_venous_fistula", False): "csf_venous_fistula",
             ("post_lp", "procedural", False): "post_lp"}
    for (etiology, leak, slec), key in cases.items():
        h = cl.History(etiology, leak, slec=slec)
        assert cl.ebp_key(h) == key
        assert cl.transient_relief_probability(cl.EBP, h, c) == c.ebp_transient_relief[key]
        assert cl.transient_relief_probability(cl.TARGETED_PATCH, h, c) == 0.0
    assert c.ebp_transient_relief["post_lp"] == 0.0 < c.ebp_transient_relief["ventral_dural_tear"]
    # A study's short-term rate is durable + (1 - durable) x transient: Piechowiak's 88% for a ventral tear.
    durable = c.ebp_first_success["ventral_dural_tear"]
    assert durable + (1 - durable) * c.ebp_transient_relief["ventral_dural_tear"] == pytest.approx(0.88, abs=0.01)


def test_imaging_yields_split_by_bern_class_average_the_published_yields(sc, exp, low):
    """Each published yield is the average over the class mix of those it is done for (Dobrocky 2019's score):
    a first study over the leak type's mix, a repeat over the mix of those a first refined study missed; higher
    scores find more, and a repeat among the missed finds less than its average would in everyone."""
    c = sc.clinical
    for leak in ("ventral_dural_tear", "meningeal_diverticulum", "csf_venous_fistula"):
        shares = [c.bern_class_shares[leak][b] for b in BERN_CLASSES]
        for profile in (exp, low):
            by_class = [cl.imaging_yield(cl.IMAGING, cl.History("spontaneous", leak, bern_class=b), profile, c)
                        for b in BERN_CLASSES]
            assert by_class[0] > by_class[1] > by_class[2]
            assert np.dot(shares, by_class) == pytest.approx(c.imaging_yield[profile.imaging_technique][leak])
        first = [cl.imaging_yield(cl.IMAGING, cl.History("spontaneous", leak, bern_class=b), exp, c)
                 for b in BERN_CLASSES]
        missed = np.array(shares) * (1 - np.array(first))
        repeat = [cl.imaging_yield(cl.IMAGING_REPEAT, cl.History("spontaneous", leak, bern_class=b), exp, c)
                  for b in BERN_CLASSES]
        average = cl.repeat_yield(exp.imaging_technique, exp.repeat_imaging_technique, leak, c)
        assert np.dot(missed / missed.sum(), repeat) == pytest.approx(average)
        assert np.dot(shares, repeat) > average
    unseen = cl.History("spontaneous", "indeterminate", bern_class="high")
    assert cl.imaging_yield(cl.IMAGING, unseen, exp, c) == 0.0


@given(p_mean=st.floats(0.01, 0.99), a=st.floats(0.01, 1.0), b=st.floats(0.01, 1.0),
       ratios=st.tuples(st.floats(0.05, 20.0), st.floats(0.05, 20.0), st.floats(0.05, 20.0)))
def test_an_odds_scaled_mixture_averages_its_mean_with_the_odds_ratios_asked(p_mean, a, b, ratios):
    weights = (a / (1 + a + b), b / (1 + a + b), 1 / (1 + a + b))
    probs = cl.odds_scaled_mixture(p_mean, weights, ratios)
    assert np.dot(weights, probs) == pytest.approx(p_mean, abs=1e-9)
    odds = [p / (1 - p) for p in probs]
    for o, r in zip(odds, ratios, strict=True):
        assert o / odds[0] == pytest.approx(r / ratios[0], rel=1e-6)
    early, late = cl.early_and_late_success(p_mean, weights[1], ratios[1])
    assert (early, late) == cl.odds_scaled_mixture(p_mean, (1 - weights[1], weights[1]), (1.0, ratios[1]))


def test_drawn_bern_classes_follow_each_leak_types_shares():
    """The population draws a spontaneous patient's class from her leak type's shares (within 4 standard errors);
    procedure-related patients have none (-1, a null in the patient table)."""
    from sim.model.population import draw_cohort

    s = load_scenario(LOW_VOLUME, overrides={"run.horizon_days": 3650, "population.catchment.adults": 20_000_000})
    cohort = draw_cohort(s, 7, 0)
    spontaneous = cohort.leak_type >= 0
    assert (cohort.bern_class[~spontaneous] == -1).all() and (cohort.bern_class[spontaneous] >= 0).all()
    for lt_index, leak in enumerate(LEAK_TYPES):
        classes = cohort.bern_class[cohort.leak_type == lt_index]
        for b_index, b in enumerate(BERN_CLASSES):
            share = s.clinical.bern_class_shares[leak][b]
            se = np.sqrt(share * (1 - share) / classes.size)
            assert abs(np.mean(classes == b_index) - share) < 4 * se + 1e-12, (leak, b)


def test_a_failed_operation_or_embolization_is_imaged_again_before_the_next_definitive_treatment(sc, exp):
    """Revision after re-imaging (Beck 2023; Brinjikji 2021): the site found before is imaged again after a failed
    operation or embolization, only while a definitive treatment is left to guide, and finds it; a center
    without the practice goes straight on."""
    c = sc.clinical
    tear = cl.History("spontaneous", "ventral_dural_tear", slec=True)
    cl.record_imaging(tear, exp, True)
    assert walk(tear, exp, c, found=True) == ["targeted_patch", "fibrin_patch", "surgery", "control_spinal_imaging",
                                              "surgery", "persistent"]
    fistula = cl.History("spontaneous", "csf_venous_fistula")
    cl.record_imaging(fistula, exp, True)
    assert walk(fistula, exp, c) == ["embolization", "control_spinal_imaging", "surgery", "control_spinal_imaging",
                                     "surgery", "persistent"]
    assert cl.imaging_yield(cl.IMAGING_CONTROL, fistula, exp, c) == 1.0
    assert cl.STEP_RESOURCE[cl.IMAGING_CONTROL] == "myelography" and cl.offers(exp, cl.IMAGING_CONTROL)
    without = dataclasses.replace(exp, reimage_after_failed_definitive=False)
    fistula = cl.History("spontaneous", "csf_venous_fistula")
    cl.record_imaging(fistula, without, True)
    assert walk(fistula, without, c) == ["embolization", "surgery", "surgery", "persistent"]


def test_a_leak_that_recurs_after_an_operation_is_imaged_again_first(sc, exp):
    """A recurrence after a successful operation starts the ladder again at the known site, imaged again first;
    after a successful targeted patch it goes straight to the patch."""
    c = sc.clinical
    operated = cl.History("spontaneous", "ventral_dural_tear", slec=True)
    cl.record_imaging(operated, exp, True)
    cl.record_step(operated, cl.LEAK_SURGERY, exp, c)
    operated.start_new_episode()
    assert cl.next_step(operated, exp, False, c) == cl.IMAGING_CONTROL
    patched = cl.History("spontaneous", "ventral_dural_tear", slec=True)
    cl.record_imaging(patched, exp, True)
    cl.record_step(patched, cl.TARGETED_PATCH, exp, c)
    patched.start_new_episode()
    assert cl.next_step(patched, exp, False, c) == cl.TARGETED_PATCH


def test_a_repeat_with_a_more_sensitive_technique_adds_what_it_finds_beyond_the_first(sc, exp):
    """A repeat finds what a second look with the same technique finds (the other side, another phase), and with
    a more sensitive technique also what it finds beyond the first (it is read as finding all the first finds):
    decubitus CT myelography after decubitus DSM (Luetzen 2024); a less sensitive one adds nothing."""
    c = sc.clinical
    leak = "csf_venous_fistula"
    second_look = c.repeat_imaging_yield[leak]
    assert cl.repeat_yield("refined", "refined", leak, c) == pytest.approx(second_look)
    y1, y2 = c.imaging_yield["refined"][leak], c.imaging_yield["decubitus_ctm"][leak]
    assert y2 > y1
    assert cl.repeat_yield("refined", "decubitus_ctm", leak, c) == pytest.approx(
        1 - (1 - second_look) * (1 - y2) / (1 - y1))
    assert cl.repeat_yield("decubitus_ctm", "refined", leak, c) == pytest.approx(second_look)
    # the center's first and repeat techniques are its profile's; any refined first technique can repeat
    assert (exp.imaging_technique, exp.repeat_imaging_technique) == ("refined", "decubitus_ctm")
    pcct = dataclasses.replace(exp, imaging_technique="photon_counting_ct")
    assert cl.offers(pcct, cl.IMAGING_REPEAT) and cl.offers(pcct, cl.IMAGING_REFINED)
    h = cl.History("spontaneous", leak)
    cl.record_imaging(h, pcct, False)
    assert h.imaged_refined and cl.next_step(h, pcct, False, c) == cl.IMAGING_REPEAT


def test_a_control_study_is_done_only_where_the_treatment_it_guides_is(sc, exp):
    """No referral for the control study alone, and no study before a ladder that cannot go on here: a center
    without spinal imaging goes straight to the revision; one that offers none of the remaining treatments
    refers (can_refer) or ends the ladder, and the study is left to the center that treats."""
    c = sc.clinical
    fistula = cl.History("spontaneous", "csf_venous_fistula", bern_class="high")
    cl.record_imaging(fistula, exp, True)
    cl.record_step(fistula, cl.EMBOLIZATION, exp, c)
    no_imaging = dataclasses.replace(exp, offers_spinal_imaging=False)
    assert cl.next_step(fistula, no_imaging, True, c) == cl.LEAK_SURGERY
    no_surgery = dataclasses.replace(exp, offers_leak_surgery=False)
    assert cl.next_step(fistula, no_surgery, False, c) == cl.PERSISTENT
    assert cl.next_step(fistula, no_surgery, True, c) == cl.REFER
    assert fistula.reimage_due and cl.next_step(fistula, exp, False, c) == cl.IMAGING_CONTROL


def test_imaging_needs_a_bern_class():
    """Every spontaneous patient has one (drawn by the population); a study for a patient without one is a bug."""
    with pytest.raises(ValueError, match="Bern class"):
        cl.imaging_yield(cl.IMAGING, cl.History("spontaneous", "ventral_dural_tear"),
                         load_scenario(LOW_VOLUME).center("specialist").profile, load_scenario(LOW_VOLUME).clinical)


def test_a_refined_study_after_a_negative_conventional_one_averages_over_those_it_missed(sc, exp):
    c = sc.clinical
    leak = "csf_venous_fistula"
    shares = np.array([c.bern_class_shares[leak][b] for b in BERN_CLASSES])
    ratios = tuple(c.imaging_odds_ratio_by_bern[b] for b in BERN_CLASSES)
    conventional = np.array(cl.odds_scaled_mixture(c.imaging_yield["conventional"][leak], tuple(shares), ratios))
    missed = shares * (1 - conventional)
    refined = [cl.imaging_yield(cl.IMAGING_REFINED, cl.History("spontaneous", leak, bern_class=b), exp, c)
               for b in BERN_CLASSES]
    assert np.dot(missed / missed.sum(), refined) == pytest.approx(c.imaging_yield["refined"][leak])
