"""Beyond one machine, on existing engines: a team's MLflow tracking server on PostgreSQL, and
a sweep fanned out as SkyPilot jobs that share results through a DVC remote and a git remote."""
