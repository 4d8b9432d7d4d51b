"""Pure reconcile logic: (spec, observed, now) -> desired objects and status."""
