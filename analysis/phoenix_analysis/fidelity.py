"""Does a critical query still give the same answer on the candidate?

Two questions, per timestamp:
- *Values.* The error is the relative difference of the answers' totals,
  |sum c - sum b| / sum |b|. The two variants are scraped at slightly
  different moments, so each label set carries a little timing noise; in a
  total it cancels, where a sum of per-label-set absolute differences would
  pile it up into a bias. A near-tie at the edge of a topk (rank 5 swapping
  with rank 6 between variants) also stays small. The equivalence test (TOST) asks whether the
  mean error lies within +-maxQueryError; the error is never negative, so the
  lower one-sided test always holds and the decision rests on the upper bound.
- *Shape.* Coverage is the share of the baseline's answer whose label set the
  candidate also returns. A candidate that removed a label the query groups
  by keeps totals but loses coverage; below MIN_COVERAGE the query fails
  outright, whatever its values. What neither catches is value moved between
  label sets that both variants keep, which aggregation does not do.
Top-k overlap reports whether the heaviest label sets are still the heaviest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
# A topk boundary swap costs a few percent of coverage at most; a lost label costs all of it.
MIN_COVERAGE = 0.9
TOP_K = 5
# Far beyond any real count, rate or size; the sums and squares of larger values overflow a float.
MAX_MAGNITUDE = 1e100


@dataclass(frozen=True)
class QueryErrors:
    """Per-timestamp errors of one query, or why they could not be computed."""

    errors: Floats | None
    coverage: Floats | None
    topk_overlap: float | None
    problem: str | None


def _series(values: list[float | None]) -> Floats:
    return np.array(values, dtype=np.float64)  # None becomes NaN


def _labelled(values: dict[str, list[float | None]], keys: list[str], length: int) -> Floats:
    """One row per label set in `keys`; a label set this side lacks is all NaN."""
    rows = [_series(values[key]) if key in values else np.full(length, np.nan) for key in keys]
    return np.vstack(rows) if rows else np.zeros((0, length))


def query_errors(
    baseline: list[float | None] | dict[str, list[float | None]],
    candidate: list[float | None] | dict[str, list[float | None]],
    samples: int,
) -> QueryErrors:
    if isinstance(baseline, list) and isinstance(candidate, list):
        b, c = _series(baseline)[None, :], _series(candidate)[None, :]
    elif isinstance(baseline, dict) and isinstance(candidate, dict):
        lengths = {len(v) for v in (*baseline.values(), *candidate.values())}
        if lengths - {samples}:
            return QueryErrors(None, None, None, f"has series of {sorted(lengths)} samples, expected {samples}")
        keys = sorted(set(baseline) | set(candidate))
        b, c = _labelled(baseline, keys, samples), _labelled(candidate, keys, samples)
    else:
        return QueryErrors(None, None, None, "one variant is a single series and the other is labelled")
    if b.shape[1] != samples or c.shape[1] != samples:
        return QueryErrors(None, None, None, f"has {b.shape[1]}/{c.shape[1]} samples, expected {samples}")
    if b.shape[0] == 0:
        return QueryErrors(None, None, None, "returned no series on either variant")
    if np.any(np.abs(b) > MAX_MAGNITUDE) or np.any(np.abs(c) > MAX_MAGNITUDE):
        return QueryErrors(None, None, None, f"has infinite values or values beyond {MAX_MAGNITUDE:g}")
    both_missing = np.isnan(b) & np.isnan(c)
    if np.all(both_missing.all(axis=0)):
        return QueryErrors(None, None, None, "returned no data on either variant")
    # a series on one side only is compared against zero: it counts in full
    shared = ~np.isnan(b) & ~np.isnan(c)
    b0, c0 = np.where(np.isnan(b), 0.0, b), np.where(np.isnan(c), 0.0, c)
    scale = np.abs(b0).sum(axis=0)
    difference = np.abs(c0.sum(axis=0) - b0.sum(axis=0))
    covered = np.where(shared, np.abs(b0), 0.0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        errors = np.where(scale > 0, difference / scale, np.where(difference > 0, 1.0, 0.0))
        coverage = np.where(scale > 0, covered / scale, np.where(np.abs(c0).sum(axis=0) > 0, 0.0, 1.0))
    return QueryErrors(errors, coverage, _topk_overlap(b0, c0), None)


def _topk_overlap(b: Floats, c: Floats) -> float | None:
    """Mean share of the baseline's top-k label sets that are also the candidate's."""
    rows = b.shape[0]
    if rows < 2:
        return None
    k = min(TOP_K, rows)
    in_top_b = np.argsort(np.argsort(-b, axis=0), axis=0) < k
    in_top_c = np.argsort(np.argsort(-c, axis=0), axis=0) < k
    return float(np.mean((in_top_b & in_top_c).sum(axis=0) / k))
