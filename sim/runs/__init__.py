"""Running the model: one replication, many (parallel, resumable), comparisons, sweeps, warm-up, PSA and sensitivity."""
