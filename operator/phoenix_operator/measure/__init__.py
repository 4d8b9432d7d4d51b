"""Prometheus in, the analysis contract's arrays out; the rest of Phoenix never sees PromQL."""
