"""Statistics of the outputs: metrics, intervals, survival curves, summaries, planners' time series."""
