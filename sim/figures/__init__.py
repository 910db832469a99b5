"""Figures drawn from tables (outcomes, resources, economics), for the report and for PSA."""
