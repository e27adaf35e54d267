"""Reproducible deep-learning experiment pipeline: the importable library.

Pure computation lives here; stages/ holds the thin command-line entry points
that read params.yaml, call this library and write the outputs dvc.yaml declares.
"""
