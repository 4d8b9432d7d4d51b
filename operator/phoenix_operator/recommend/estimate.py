"""A pre-flight prediction of what each variant of an experiment exports, before anything runs.

From the experiment's own LoadSim profile: the population LoadSim would have
at the end of the run is replayed (the same seed gives the same processes),
and each variant's changes are applied to its series set, as the templates
do: dropped metrics leave; aggregated attributes are removed from each
process's resource (except for the executables kept in detail), and the
series that then coincide are summed into one. From a Prometheus, the same
changes are counted on the real current series (`series_kept` there).

Each change's share of the saving is found by leaving it out: the series the
candidate would keep without it, over the series it saves in all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from phoenix_analysis import contract, cost
from phoenix_operator.loadsim import encode, fleet
from phoenix_operator.models import experiment, loadsim, pipeline
from phoenix_operator.recommend import names


@dataclass(frozen=True)
class Changes:
    """What a variant does to the series it receives."""

    drop_metrics: frozenset[str] = frozenset()
    aggregate_away: frozenset[str] = frozenset()
    keep_executables: frozenset[str] = frozenset()

    @staticmethod
    def of(variant: pipeline.PipelineVariant) -> Changes:
        """What the variant's template does; a baseline forwards everything."""
        parameters = variant.parameters
        if not isinstance(parameters, pipeline.CandidateParameters):
            return Changes()  # a baseline forwards everything
        keep = parameters.keep_processes.executable_names if parameters.keep_processes else []
        return Changes(frozenset(parameters.drop_metrics), frozenset(parameters.aggregate_away_attributes),
                       frozenset(keep))  # fmt: skip

    def without(self, change: tuple[str, str]) -> Changes:
        kind, name = change
        if kind == "drop":
            return Changes(self.drop_metrics - {name}, self.aggregate_away, self.keep_executables)
        return Changes(self.drop_metrics, self.aggregate_away - {name}, self.keep_executables)

    @property
    def each(self) -> list[tuple[str, str]]:
        drops = [("drop", m) for m in sorted(self.drop_metrics)]
        return drops + [("aggregate", a) for a in sorted(self.aggregate_away)]


@dataclass(frozen=True)
class Prediction:
    series: int
    datapoints_per_minute: float


@dataclass(frozen=True)
class Share:
    change: str  # "aggregating away process.pid", "dropping process.memory.virtual"
    saved_series: int
    share: float  # of all the series the candidate saves


@dataclass(frozen=True)
class Estimate:
    baseline: Prediction
    candidate: Prediction
    monthly_savings_usd: float
    shares: list[Share]
    source: str  # where the series came from


def _describe(change: tuple[str, str]) -> str:
    kind, name = change
    return f"dropping {name}" if kind == "drop" else f"aggregating away {name}"


# Counts the series a variant with these changes would export.
SeriesCount = Callable[[Changes], int]


def estimate(
    baseline: Changes,
    candidate: Changes,
    count: SeriesCount,
    points_per_minute_per_series: float,
    prices: contract.CostModel,
    source: str,
) -> Estimate:
    """Both variants' series and datapoints per minute, the monthly savings, and each change's share."""
    predicted = {}
    for variant, changes in (("baseline", baseline), ("candidate", candidate)):
        series = count(changes)
        predicted[variant] = Prediction(series, series * points_per_minute_per_series)
    saved = predicted["baseline"].series - predicted["candidate"].series
    shares = []
    for change in candidate.each:
        without = count(candidate.without(change)) - predicted["candidate"].series
        shares.append(Share(_describe(change), without, without / saved if saved > 0 else 0.0))
    monthly = {
        variant: float(
            cost.monthly_cost(
                prices, np.asarray([p.series], float), np.asarray([p.datapoints_per_minute], float), None, None
            )[0]
        )
        for variant, p in predicted.items()
    }
    return Estimate(
        predicted["baseline"],
        predicted["candidate"],
        monthly["baseline"] - monthly["candidate"],
        sorted(shares, key=lambda s: -s.saved_series),
        source,
    )


def from_profile(spec: loadsim.LoadProfileSpec) -> SeriesCount:
    """Counts series on the population LoadSim would have at the end of a run of `spec`."""
    population = fleet.Fleet(spec, start_unix_nano=0)
    for _ in range(population.ticks - 1):
        population.advance()
    processes = [
        encode.resource_attributes(population, host, slot)
        for host in range(spec.hosts)
        for slot in range(population.running)
    ]

    def count(changes: Changes) -> int:
        resources = set()
        for attributes in processes:
            kept = attributes
            if changes.aggregate_away and attributes["process.executable.name"] not in changes.keep_executables:
                kept = {k: v for k, v in attributes.items() if k not in changes.aggregate_away}
            resources.add(tuple(sorted(kept.items())))
        points = sum(len(shape.values) for shape in encode.METRICS if shape.name not in changes.drop_metrics)
        return len(resources) * points

    return count


# Beyond this many simulated processes the replay takes long enough to be asked for, not done in passing.
REPLAYED_IN_PASSING = 200_000


def candidate_series(spec: experiment.ExperimentSpec) -> int | None:
    """The offline prediction of the candidate's series, to set beside what a run measured; None when it
    cannot be made in passing (a pipelineRef baseline, the adaptive template, a very large load)."""
    load = spec.load.load_sim
    if isinstance(spec.baseline, experiment.PipelineRef) or spec.candidate.template == "adaptive":
        return None
    if load.hosts * load.processes_per_host > REPLAYED_IN_PASSING:
        return None
    return from_profile(load)(Changes.of(spec.candidate))


def prometheus_names(changes: Changes) -> tuple[frozenset[str], frozenset[str]]:
    """The dropped metrics' and the aggregated attributes' names as the prometheus exporter writes them,
    for the metrics of the semantic conventions."""
    dropped = frozenset(
        names.metric_name(*metric) for metric in names.PROCESS_METRICS if metric[0] in changes.drop_metrics
    )
    return dropped, frozenset(names.label_name(a) for a in changes.aggregate_away)
