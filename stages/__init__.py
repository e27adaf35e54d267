"""Thin command-line entry points, one per stage kind: `python -m stages.<verb> <experiment> ...`."""
