"""A small Prometheus HTTP API client: range queries aligned on a fixed time grid."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import numpy as np
import numpy.typing as npt

# Labels that name where a sample came from rather than what it measures;
# they are dropped so that the same label set matches across variants.
SOURCE_LABELS = frozenset({"phoenix_experiment", "phoenix_variant", "phoenix_scrape", "job", "instance"})


class PrometheusError(Exception):
    """Prometheus could not answer: unreachable, timed out, or rejected the query."""


@dataclass(frozen=True)
class Grid:
    start: float
    end: float
    step: float

    @property
    def timestamps(self) -> npt.NDArray[np.float64]:
        count = int(np.floor((self.end - self.start) / self.step + 1e-9)) + 1
        return np.asarray(self.start + self.step * np.arange(count), dtype=np.float64)


def label_key(labels: dict[str, str]) -> str:
    kept = sorted((k, v) for k, v in labels.items() if k not in SOURCE_LABELS and k != "__name__")
    return ",".join(f"{k}={v}" for k, v in kept)


@dataclass
class Client:
    url: str
    bearer_token: str | None = None
    timeout: float = 10.0

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {}

    def range_query(self, query: str, grid: Grid) -> dict[str, npt.NDArray[np.float64]]:
        """Series of the result by label key, each aligned to the grid (NaN where absent)."""
        params: dict[str, str | float] = {"query": query, "start": grid.start, "end": grid.end, "step": grid.step}
        try:
            response = httpx.get(
                f"{self.url.rstrip('/')}/api/v1/query_range",
                params=params,
                headers=self._headers(),
                timeout=self.timeout,
            )
        except httpx.TimeoutException:
            raise PrometheusError(f"Prometheus at {self.url} timed out after {self.timeout:.0f}s") from None
        except httpx.HTTPError as error:
            raise PrometheusError(f"Prometheus at {self.url} is unreachable: {error}") from None
        try:
            body = response.json()
        except ValueError:
            raise PrometheusError(f"Prometheus answered HTTP {response.status_code} without JSON") from None
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(
                f"Prometheus rejected the query (HTTP {response.status_code}): {body.get('error', 'no error text')}"
            )
        timestamps = grid.timestamps
        series: dict[str, npt.NDArray[np.float64]] = {}
        for item in body["data"]["result"]:
            values = np.full(len(timestamps), np.nan)
            for moment, value in item["values"]:
                index = round((float(moment) - grid.start) / grid.step)
                if 0 <= index < len(values):
                    values[index] = float(value)
            key = label_key(item["metric"])
            series[key] = np.where(np.isnan(values), series.get(key, values), values) if key in series else values
        return series
