"""Back-tests: whole runs must reproduce the results stored in tests/backtest/ (see tools/make_backtest_data.py).

Engine work (speed, refactoring) must not change a single patient. When a change is meant to alter results,
regenerate the data with `python tools/make_backtest_data.py` and say why in the commit message.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tools.make_backtest_data import CASES, DATA, case_tables

# Counts, labels and states must match exactly; days, costs and QALYs to 1e-9 relative (libm may differ in the
# last bit across machines, which the exact columns would still catch if it ever changed a decision).
RTOL = 1e-9


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


@pytest.mark.parametrize("name", list(CASES))
def test_whole_run_reproduces_the_stored_results(name: str) -> None:
    patients, resources = case_tables(name)
    for table, stored_path in ((patients, DATA / f"{name}_patients.csv.gz"),
                               (resources, DATA / f"{name}_resources.csv")):
        stored = _read(stored_path)
        fresh = _read_roundtrip(table)
        assert list(fresh.columns) == list(stored.columns), f"{name}: columns changed"
        assert len(fresh) == len(stored), f"{name}: {len(fresh)} rows, stored {len(stored)}"
        for column in stored.columns:
            if pd.api.types.is_float_dtype(stored[column]) or pd.api.types.is_float_dtype(fresh[column]):
                pd.testing.assert_series_equal(fresh[column].astype(float), stored[column].astype(float),
                                               check_exact=False, rtol=RTOL, obj=f"{name}.{column}")
            else:
                pd.testing.assert_series_equal(fresh[column], stored[column], obj=f"{name}.{column}")


def _read_roundtrip(table: pd.DataFrame) -> pd.DataFrame:
    """The fresh table through the same CSV writer and reader as the stored one, so dtypes compare like for like."""
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    buffer.seek(0)
    return _read(buffer)
