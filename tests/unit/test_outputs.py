"""The fast CSV writer writes the bytes pandas would, or leaves the table to pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.config.scenario import load_scenario
from sim.io.outputs import atomic_write_csv, csv_text
from tests.helpers import LOW_VOLUME, PERIOD


def _awkward_numbers() -> pd.DataFrame:
    x = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, 1e300, 0.1, 1 / 3, 5e-324, 1e16, 1e-5, 1.5e17, 2.0, 2.0]
    n = len(x)
    return pd.DataFrame({"x": x, "i": np.arange(n) - 7, "u": np.arange(n, dtype=np.uint8), "b": [True, False] * 7 +
                         [True], "s": (["all", "all centers/ct", "p95 (days)"] * n)[:n],
                         "f32": np.linspace(-1, 1, n, dtype=np.float32)})


@pytest.mark.parametrize("frame", [
    _awkward_numbers(),
    pd.DataFrame(columns=["a", "b"]),
    pd.DataFrame({"group": pd.Series(["a", "b"], dtype="str"), "v": [1.0, np.nan]}),
])
def test_csv_text_is_what_pandas_writes(frame: pd.DataFrame) -> None:
    assert csv_text(frame) == frame.to_csv(index=False)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"s": ["a,b", "c"]}),  # quoted by pandas
    pd.DataFrame({"s": ['say "x"']}),
    pd.DataFrame({"s": [""]}),
    pd.DataFrame({"s": ["a", None]}),  # missing text
    pd.DataFrame({"d": pd.to_datetime(["2020-01-01"])}),
    pd.DataFrame({"c": pd.Categorical(["a"])}),
    pd.DataFrame({"n": pd.array([1, None], dtype="Int64")}),
    pd.DataFrame({"a,b": [1]}),
    pd.DataFrame(),
])
def test_tables_it_does_not_cover_go_to_pandas(frame: pd.DataFrame, tmp_path) -> None:
    assert csv_text(frame) is None
    atomic_write_csv(tmp_path / "t.csv", frame)
    assert (tmp_path / "t.csv").read_text() == frame.to_csv(index=False)


def test_km_table_of_a_run_is_written_as_pandas_writes_it(tmp_path) -> None:
    from sim.runs.experiment import run

    s = load_scenario(LOW_VOLUME, overrides={**PERIOD, "run.horizon_days": 400})
    run(s, reps=2, seed=5, out=tmp_path / "r", log_events=False, progress=False)
    km = pd.read_csv(tmp_path / "r" / "km.csv")
    assert csv_text(km) == km.to_csv(index=False) == (tmp_path / "r" / "km.csv").read_text()


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 12), data=st.data())
def test_csv_text_matches_pandas_on_random_tables(n: int, data) -> None:
    """Any mix of float (with NaN, infinities, signed zeros, subnormals), integer, boolean and plain-text columns:
    the same bytes as pandas, or None (left to pandas)."""
    floats = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=64)
    columns = {
        "f": data.draw(st.lists(floats, min_size=n, max_size=n)),
        "f32": np.array(data.draw(st.lists(st.floats(width=32, allow_nan=True), min_size=n, max_size=n)),
                        dtype=np.float32),
        "i": np.array(data.draw(st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n)), dtype=np.int64),
        "b": data.draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "s": data.draw(st.lists(st.sampled_from(["all", "spontaneous", "all centers/ct", "p95 (days)", "x y"]),
                                min_size=n, max_size=n)),
    }
    frame = pd.DataFrame(columns)
    text = csv_text(frame)
    assert text is None or text == frame.to_csv(index=False)
    assert text is not None  # every column here is of a covered kind


def test_parquet_keeps_dictionaries_for_names_and_counts_but_not_for_days(tmp_path) -> None:
    """Floats are written plain (a dictionary of nearly distinct values only cost time and bytes), names and
    counts with a dictionary, and every value reads back as it was."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim.io.outputs import ParquetConcat

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"center": rng.choice(["a", "b"], 5000), "n_ebp": rng.integers(0, 4, 5000),
                          "resolved_day": rng.exponential(100.0, 5000)})
    out = ParquetConcat(tmp_path / "t.parquet")
    for _ in range(2):
        out.add(tmp_path, pa.Table.from_pandas(frame, preserve_index=False))
    assert out.close() == 10_000
    meta = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(1)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert any("DICTIONARY" in e for e in encodings["center"])
    assert any("DICTIONARY" in e for e in encodings["n_ebp"])
    assert not any("DICTIONARY" in e for e in encodings["resolved_day"])
    back = pd.read_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(back, pd.concat([frame, frame], ignore_index=True))
