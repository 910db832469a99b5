"""Seeds and random streams: one stream per purpose, keyed so that results never depend on run order.

Every stream is `SeedSequence(root_seed, spawn_key=(replication, purpose, etiology))`. Keying by purpose (not by
the order streams are created) means adding a new purpose never shifts the others; keying by etiology means that
changing one etiology's arrival rate leaves every other patient's luck alone. Patient j of etiology e in
replication r therefore meets the same uniforms at her n-th blood patch, imaging or surgery in every scenario with
the same population: common random numbers keyed to the patient and the decision.

Per-patient uniforms come in fixed-width slot arrays (`SLOTS`): the n-th use of a purpose reads slot n. The widths
are constants (not scenario-dependent) so two scenarios always share the same draws; a patient who needs more uses
than slots wraps round to slot 0 (only reachable with extreme attempt limits, and documented in docs/model.md).
"""

from __future__ import annotations

import numpy as np

# Purpose -> fixed integer key. Never renumber: that would change every published result.
PURPOSE_KEYS: dict[str, int] = {
    "arrivals": 0,
    "attributes": 1,
    "natural_history": 2,
    "care_seeking": 3,
    "consultation": 4,
    "mri": 5,
    "imaging": 6,
    "ebp": 7,
    "targeted_patch": 8,
    "fibrin_patch": 9,
    "surgery": 10,
    "durotomy_repair": 11,
    "embolization": 12,
    "rih": 13,
    "recurrence": 14,
    "referral": 15,
    "misdiagnosis_return": 16,
    "conservative": 17,
    "thinning": 18,
    "service": 100,  # + resource index
    "booking": 200,  # + resource index
}

# Slots per patient for each per-use purpose (columns of the uniform arrays).
SLOTS: dict[str, int] = {
    "consultation": 24,
    "mri": 8,
    "imaging": 8,
    "ebp": 16,
    "targeted_patch": 4,
    "fibrin_patch": 4,
    "surgery": 4,
    "durotomy_repair": 4,
    "embolization": 4,
    "rih": 8,
    "recurrence": 8,
    "referral": 4,
    "misdiagnosis_return": 24,
    "conservative": 4,
    "service": 16,
    "booking": 16,
}


def stream(root_seed: int, replication: int, purpose: str, sub: int = 0) -> np.random.Generator:
    """The numpy Generator for one purpose (and sub-key, e.g. etiology or resource) of one replication."""
    key = PURPOSE_KEYS[purpose] if purpose in PURPOSE_KEYS else _compound(purpose)
    seq = np.random.SeedSequence(int(root_seed), spawn_key=(int(replication), key, int(sub)))
    return np.random.Generator(np.random.PCG64(seq))


def _compound(purpose: str) -> int:
    base, _, index = purpose.partition(":")
    return PURPOSE_KEYS[base] + int(index)


def replication_seed(root_seed: int, scenario_offset: int = 0) -> int:
    """Root seed used for a scenario: the same for all scenarios under common random numbers; shifted per
    scenario when independent streams are wanted (to measure what common random numbers buy)."""
    return int(root_seed) + 1_000_003 * int(scenario_offset)
