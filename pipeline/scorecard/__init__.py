"""The scorecard: every number the seed reports printed, ours beside it, and a verdict."""
