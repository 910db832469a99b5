"""Costs, QALYs and cost-effectiveness: pure functions of tables, importing no runs."""
