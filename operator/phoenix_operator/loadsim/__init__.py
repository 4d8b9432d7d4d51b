"""LoadSim: synthetic per-process metrics, identical for every target pipeline."""
