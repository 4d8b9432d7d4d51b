"""The labels that tie a measured series to its experiment, variant and scrape.

Collectors stamp the experiment and variant on every exported series (const
labels); the Prometheus that scrapes them adds which port a series came from
(a target label). The measurement layer selects on all three, so they are
named here once for the templates, the local runtime and the queries.
"""

from __future__ import annotations

EXPERIMENT = "phoenix_experiment"
VARIANT = "phoenix_variant"
SCRAPE = "phoenix_scrape"
# values of SCRAPE: the pipeline's exported metrics, and the collector's own telemetry
EXPORT = "export"
TELEMETRY = "telemetry"


def of_variant(experiment: str, variant: str) -> dict[str, str]:
    """The const labels a variant's collector puts on everything it exports."""
    return {EXPERIMENT: experiment, VARIANT: variant}


def of_scrape(experiment: str, variant: str, scrape: str) -> dict[str, str]:
    """The labels of a series as Prometheus stores it, from one of the collector's two ports."""
    return {**of_variant(experiment, variant), SCRAPE: scrape}
