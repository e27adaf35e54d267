"""Thin command-line entry points: one module per experiment (`python -m stages.<experiment> <stage>`),
the shared dataset stages (`stages.data`), the stage harness (`stages.common`) and the FER live demo."""
