"""`theory`: the coursework reports' computable theory answers, computed with torch."""
