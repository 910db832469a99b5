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
    "front_door": 19,
    "second_opinion": 20,
    "severity": 21,
    "residual": 22,
    "complications": 23,
    "relief": 24,
    "leak_complications": 25,
    "service": 100,  # + resource index
    "booking": 200,  # + resource index
    "background": 300,  # other patients' requests for a session-booked resource: + center x resources + resource
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
    "second_opinion": 4,
    "misdiagnosis_return": 24,
    "conservative": 4,
    "residual": 4,
    "relief": 8,
    "service": 16,
    "booking": 16,
}


def stream(root_seed: int, replication: int, purpose: str, sub: int = 0) -> np.random.Generator:
    """The numpy Generator for one purpose (and sub-key, e.g. etiology or resource) of one replication."""
    seq = np.random.SeedSequence(int(root_seed), spawn_key=(int(replication), purpose_key(purpose), int(sub)))
    return np.random.Generator(np.random.PCG64(seq))


def purpose_key(purpose: str) -> int:
    """The spawn-key word of a purpose ("service:2" is the service key + resource 2)."""
    return PURPOSE_KEYS[purpose] if purpose in PURPOSE_KEYS else _compound(purpose)


def _compound(purpose: str) -> int:
    base, _, index = purpose.partition(":")
    return PURPOSE_KEYS[base] + int(index)


def replication_seed(root_seed: int, scenario_offset: int = 0) -> int:
    """Root seed used for a scenario: the same for all scenarios under common random numbers; shifted per
    scenario when independent streams are wanted (to measure what common random numbers buy)."""
    return int(root_seed) + 1_000_003 * int(scenario_offset)


# SeedSequence's hashing constants (numpy/random/bit_generator.pyx) and PCG64's 128-bit LCG multiplier.
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_MASK32, _MASK128 = 0xFFFFFFFF, (1 << 128) - 1
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
_POOL = 4


def _hashmix(value: np.ndarray, hash_const: int) -> tuple[np.ndarray, int]:
    value = value ^ np.uint32(hash_const)
    hash_const = (hash_const * _MULT_A) & _MASK32
    value = value * np.uint32(hash_const)
    return value ^ (value >> np.uint32(16)), hash_const


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    result = np.uint32(_MIX_MULT_L) * x - np.uint32(_MIX_MULT_R) * y
    return result ^ (result >> np.uint32(16))


def pcg64_states(root_seed: int, keys: list[tuple[int, int, int]]) -> list[dict] | None:
    """The states of `PCG64(SeedSequence(root_seed, spawn_key=key))` for many keys at once, or None when a value
    does not fit in 32 bits (then use `stream`).

    Why. A replication opens over a hundred streams (purpose x etiology); building each SeedSequence and PCG64
    costs more than drawing its uniforms. This is numpy's SeedSequence hashing (which NEP 19 keeps stable) done
    on all keys at once in uint32 arithmetic, then PCG64's seeding of its 128-bit state; setting one generator to
    these states gives exactly the streams `stream(root_seed, *key)` gives (tests/unit/test_randomness.py checks).
    """
    root_seed = int(root_seed)
    words = np.asarray(keys, dtype=np.int64).reshape(-1, 3)
    if not 0 <= root_seed <= _MASK32 or words.size == 0 or words.min() < 0 or words.max() > _MASK32:
        return None
    m = words.shape[0]
    # Assembled entropy: the root seed (one word) padded to the pool size, then the spawn key's words.
    zero = np.zeros(m, dtype=np.uint32)
    entropy = [np.full(m, root_seed, dtype=np.uint32), zero, zero, zero,
               *(words[:, k].astype(np.uint32) for k in range(3))]
    hc = _INIT_A
    pool = []
    for i in range(_POOL):
        value, hc = _hashmix(entropy[i], hc)
        pool.append(value)
    for i_src in range(_POOL):
        for i_dst in range(_POOL):
            if i_src != i_dst:
                value, hc = _hashmix(pool[i_src], hc)
                pool[i_dst] = _mix(pool[i_dst], value)
    for i_src in range(_POOL, len(entropy)):
        for i_dst in range(_POOL):
            value, hc = _hashmix(entropy[i_src], hc)
            pool[i_dst] = _mix(pool[i_dst], value)
    # generate_state(4, uint64): eight 32-bit words, paired little-endian.
    hc = _INIT_B
    out = []
    for i in range(2 * _POOL):
        value = pool[i % _POOL] ^ np.uint32(hc)
        hc = (hc * _MULT_B) & _MASK32
        value = value * np.uint32(hc)
        out.append(value ^ (value >> np.uint32(16)))
    seeds = [(out[2 * k].astype(np.uint64) | (out[2 * k + 1].astype(np.uint64) << np.uint64(32))).tolist()
             for k in range(_POOL)]
    states = []
    for s_hi, s_lo, i_hi, i_lo in zip(*seeds, strict=True):
        # pcg_setseq_128_srandom_r: state 0 stepped once (state * mult + inc) is inc; add the seed; step again.
        inc = ((((i_hi << 64) | i_lo) << 1) | 1) & _MASK128
        state = (((inc + ((s_hi << 64) | s_lo)) & _MASK128) * _PCG_MULT + inc) & _MASK128
        states.append({"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0,
                       "uinteger": 0})
    return states
