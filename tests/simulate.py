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
) -> dict[str, Any]:
    """An analyze() input whose true mean reduction, query error and CPU increase are known.

    Both variants report CPU and memory, which a Promote needs; the memory
    guardrail is at 10%. With `refused_points_ratio`, the
    candidate refuses that mean share of its points, in lognormal bursts,
    and the baseline none.
    """
    baseline = 10_000 * (1 + ar1(rng, n, 0.9, 0.05))
    candidate = baseline * (1 - reduction) * (1 + ar1(rng, n, phi, sd))
    # candidate = baseline x (1 - r)(1 + e) gives a per-sample reduction r - (1 - r) e, mean r
    query_base = {"a": (baseline / 3).tolist(), "b": (baseline / 7).tolist()}
    wobble = 1 + query_error * (1 + ar1(rng, n, phi, 0.3).clip(-0.99, None))
    query_cand = {k: (np.asarray(v) * wobble).tolist() for k, v in query_base.items()}
    cpu = 0.5 * (1 + ar1(rng, n, 0.8, 0.05))
    data = {
        "interval_seconds": 15,
        "baseline": {
            "active_series": baseline.tolist(),
            "datapoints_per_minute": (baseline * 4).tolist(),
            "cpu_cores": cpu.tolist(),
        },
        "candidate": {
            "active_series": candidate.tolist(),
            "datapoints_per_minute": (candidate * 4).tolist(),
            "cpu_cores": (cpu * (1 + cpu_increase) * (1 + ar1(rng, n, phi, 0.05))).tolist(),
        },
        "critical_queries": [{"name": "by-host", "baseline": query_base, "candidate": query_cand}],
        "objectives": {
            "min_series_reduction": 0.5,
            "max_query_error": 0.01,
            "max_cpu_increase": 0.1,
        },
    }
    memory = 2e8 * (1 + ar1(rng, n, 0.9, 0.02))
    data["baseline"]["memory_bytes"] = memory.tolist()
    data["candidate"]["memory_bytes"] = (memory * (1 + memory_increase) * (1 + ar1(rng, n, phi, 0.05))).tolist()
    data["objectives"]["max_memory_increase"] = 0.1
    if refused_points_ratio is not None:
        spread = 0.5
        bursts = np.exp(ar1(rng, n, phi, spread) - spread**2 / 2)  # mean 1
        data["baseline"]["refused_points_ratio"] = np.zeros(n).tolist()
        data["candidate"]["refused_points_ratio"] = (refused_points_ratio * bursts).tolist()
        data["objectives"]["max_refused_points_ratio"] = 0.001
    return data


def prefix(data: dict[str, Any], n: int) -> dict[str, Any]:
    """The same experiment input cut to its first n samples, as an earlier look would see it."""

    def cut(node: Any) -> Any:
        if isinstance(node, list) and node and isinstance(node[0], float):
            return node[:n]
        if isinstance(node, list):
            return [cut(v) for v in node]
        if isinstance(node, dict):
            return {k: cut(v) for k, v in node.items()}
        return node

    result: dict[str, Any] = cut(data)
    return result
