"""Benchmarks that print figures: `python -m tunefleet.experiments.benchmarks --help`."""
