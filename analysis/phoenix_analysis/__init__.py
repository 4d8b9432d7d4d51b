"""Phoenix's statistics: paired, anytime-valid verdicts with savings in dollars.

Pure numpy/scipy with no I/O, so every method can be calibrated on simulated
data and the operator, the local runner and the CLI share one engine.
"""
