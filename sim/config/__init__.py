"""Configuration: scenario files read and validated against scenarios/base.toml, frozen into parameter objects."""
