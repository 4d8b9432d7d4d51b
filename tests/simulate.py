"""Simulated paired experiments with AR(1) noise, for calibration tests and benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> Floats:
    """Stationary AR(1) with marginal standard deviation sd."""
    shocks = rng.normal(scale=sd * np.sqrt(1 - phi**2), size=n)
    out = np.empty(n)
    out[0] = rng.normal(scale=sd)
    for t in range(1, n):
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def experiment(
    rng: np.random.Generator,
    n: int,
    reduction: float,
    *,
    phi: float = 0.5,
    sd: float = 0.05,
    query_error: float = 0.0,
    cpu_increase: float = 0.0,
    memory_increase: float = 0.0,
    refused_points_ratio: float | None = None,
    reduction_at_end: float | None = None,
    candidate_restart_at: int | None = None,
    candidate_input_shortfall: float = 0.0,
) -> dict[str, Any]:
    """An analyze() input whose true mean reduction, query error and CPU increase are known.

    Both variants report CPU and memory, which a Promote needs; the memory
    guardrail is at 10%. With `refused_points_ratio`, the
    candidate refuses that mean share of its points, in lognormal bursts,
    and the baseline none.

    Each variant's collector counts the points it accepted, read a random
    moment within each 15 s sample, and its uptime. `reduction_at_end` makes
    the true reduction fall linearly from `reduction` to it. A restart of the
    candidate's collector at a sample loses two samples (a scrape gap), then
    resets its counters, and its series fill in again over two samples. An
    input shortfall gives the candidate that share less input: fewer points
    accepted, and fewer series and points out.
    """
    baseline = 10_000 * (1 + ar1(rng, n, 0.9, 0.05))
    true_reduction = np.linspace(reduction, reduction if reduction_at_end is None else reduction_at_end, n)
    received = 1 - candidate_input_shortfall
    candidate = baseline * (1 - true_reduction) * received * (1 + ar1(rng, n, phi, sd))
    # candidate = baseline x (1 - r)(1 + e) gives a per-sample reduction r - (1 - r) e, mean r
    query_base = {"a": (baseline / 3).tolist(), "b": (baseline / 7).tolist()}
    wobble = 1 + query_error * (1 + ar1(rng, n, phi, 0.3).clip(-0.99, None))
    query_cand = {k: (np.asarray(v) * wobble).tolist() for k, v in query_base.items()}
    cpu = 0.5 * (1 + ar1(rng, n, 0.8, 0.05))
    data = {
        "intervalSeconds": 15,
        "baseline": {
            "activeSeries": baseline.tolist(),
            "datapointsPerMinute": (baseline * 4).tolist(),
            "cpuCores": cpu.tolist(),
        },
        "candidate": {
            "activeSeries": candidate.tolist(),
            "datapointsPerMinute": (candidate * 4).tolist(),
            "cpuCores": (cpu * (1 + cpu_increase) * (1 + ar1(rng, n, phi, 0.05))).tolist(),
        },
        "criticalQueries": [{"name": "by-host", "baseline": query_base, "candidate": query_cand}],
        "objectives": {
            "minSeriesReduction": 0.5,
            "maxQueryError": 0.01,
            "maxCpuIncrease": 0.1,
        },
    }
    memory = 2e8 * (1 + ar1(rng, n, 0.9, 0.02))
    data["baseline"]["memoryBytes"] = memory.tolist()
    data["candidate"]["memoryBytes"] = (memory * (1 + memory_increase) * (1 + ar1(rng, n, phi, 0.05))).tolist()
    data["objectives"]["maxMemoryIncrease"] = 0.1
    points_per_sample = 3_000.0
    for variant, share in (("baseline", 1.0), ("candidate", received)):
        read_at = np.arange(n) + rng.uniform(0, 0.3, n)
        data[variant]["acceptedPoints"] = (points_per_sample * share * read_at).tolist()
        data[variant]["uptimeSeconds"] = (15 * read_at + 60).tolist()
    if candidate_restart_at is not None:
        restart = candidate_restart_at
        cand = data["candidate"]
        for key in ("activeSeries", "datapointsPerMinute", "cpuCores", "memoryBytes"):
            cand[key][restart : restart + 2] = [None, None]
        for key in ("acceptedPoints", "uptimeSeconds"):
            cand[key][restart : restart + 2] = [None, None]
            offset = cand[key][restart + 2 - 3]  # what the counter had counted before the restart
            cand[key][restart + 2 :] = [value - offset for value in cand[key][restart + 2 :]]
        for i, fill in ((restart + 2, 0.5), (restart + 3, 0.8)):
            cand["activeSeries"][i] *= fill
            cand["datapointsPerMinute"][i] *= fill
    data["plannedSamples"] = n
    if refused_points_ratio is not None:
        spread = 0.5
        bursts = np.exp(ar1(rng, n, phi, spread) - spread**2 / 2)  # mean 1
        data["baseline"]["refusedPointsRatio"] = np.zeros(n).tolist()
        data["candidate"]["refusedPointsRatio"] = (refused_points_ratio * bursts).tolist()
        data["objectives"]["maxRefusedPointsRatio"] = 0.001
    return data


def prefix(data: dict[str, Any], n: int) -> dict[str, Any]:
    """The same experiment input cut to its first n samples, as an earlier look would see it: still planned
    for all of the samples (unless it says otherwise), as the operator's looks are."""

    def cut(node: Any) -> Any:
        if isinstance(node, list) and node and isinstance(node[0], float):
            return node[:n]
        if isinstance(node, list):
            return [cut(v) for v in node]
        if isinstance(node, dict):
            return {k: cut(v) for k, v in node.items()}
        return node

    result: dict[str, Any] = cut(data)
    result.setdefault("plannedSamples", len(data["baseline"]["activeSeries"]))
    return result


def query_errors(rng: np.random.Generator, n: int, mean: float, cv: float, phi: float, repeats: int = 1) -> Floats:
    """A critical query's per-sample error: never negative, lognormal with AR(1) log-noise, true mean `mean`.

    `repeats` holds each value that many samples, as when the analysis step is
    shorter than the scrape interval and Prometheus answers the same scrape again.
    """
    spread = np.sqrt(np.log(1 + cv**2))
    distinct = -(-n // repeats)
    values = mean * np.exp(ar1(rng, distinct, phi, spread) - spread**2 / 2)
    return np.repeat(values, repeats)[:n]
