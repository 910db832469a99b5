"""The app's sweep figure: a line with its CI band for one parameter, a heat map of means with their CIs for two."""

from __future__ import annotations

import pandas as pd

from sim.app.draft import check, read_shipped
from sim.app.sweep_page import default_values, numeric_fields, sweep_figure

METRIC = "time_to_resolution_rmst_365_days"
TABLE = pd.DataFrame([{"a": a, "b": b, "metric": METRIC, "group": "all", "mean": 10.0 * a + b,
                       "ci95_low": 10.0 * a + b - 1, "ci95_high": 10.0 * a + b + 1} for a in (1, 2) for b in (3, 4, 5)])


def test_one_parameter_draws_the_mean_inside_its_band():
    fig = sweep_figure(TABLE[TABLE["b"] == 3], ["a"], METRIC, "all")
    band, mean = fig.data
    assert list(mean.y) == [13.0, 23.0] and max(band.y) == 24.0 and min(band.y) == 12.0
    assert list(fig.layout.xaxis.tickvals) == [1, 2]  # whole numbers on an integer axis


def test_two_parameters_draw_a_heat_map_with_each_cells_interval():
    heat = sweep_figure(TABLE, ["a", "b"], METRIC, "all").data[0]
    assert heat.z.shape == (3, 2) and heat.z[0][1] == 23.0
    assert heat.text[2][0] == "15<br>(14 to 16)"


def test_the_sweepable_parameters_and_their_first_grids():
    fields = {f.path: f for f in numeric_fields(check(read_shipped("low_volume_center"), "x"))}
    cap = fields["centers.district.resources.myelography.capacity"]
    assert default_values(cap) == "1, 2, 3"
    assert default_values(fields["clinical.ebp_first_success.spontaneous"]) == "0.5, 0.6, 0.7"
    assert all(f.kind in ("int", "float") for f in fields.values())
