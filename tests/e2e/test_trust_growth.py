"""A candidate whose series grow during the run, with real collectors, LoadSim and Prometheus.

Under the worker-growth profile the candidate keeps the per-process detail
of the one executable whose workers pile up, so its reduction starts above
the objective and falls through it. The trend check must keep it from a
Promote, and the verdict's saved input must give the same verdict offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoenix_operator.loadsim import profiles
from tests.e2e import test_one_driver

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]


def _phoenix(*args: str, timeout: float = 60) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "phoenix_operator", *args, "-o", "json"], capture_output=True, text=True, timeout=timeout
    )
    printed: dict[str, Any] | None = json.loads(done.stdout or "null")
    assert printed is not None, done.stderr
    return printed


def test_a_candidate_whose_series_grow_is_not_promoted(tmp_path: Path) -> None:
    manifest = test_one_driver.small_quickstart()
    manifest["metadata"] = {"name": "growth"}
    spec = manifest["spec"]
    spec["load"]["loadSim"]["profile"] = "worker-growth"
    # it is never promoted, so it runs to its end: as long as the trend needs to show against the noise
    spec["duration"] = "150s"
    growing = profiles.PROFILES["worker-growth"].growth_executable
    spec["candidate"]["parameters"]["keepProcesses"] = {"executableNames": [growing]}
    source, saved = tmp_path / "growth.yaml", tmp_path / "input.json"
    source.write_text(yaml.safe_dump(manifest))
    printed = _phoenix("run", "--local", "-f", str(source), *test_one_driver.MEASURE_STEP,
                       "--workdir", str(tmp_path / "run"), "--save-input", str(saved),
                       timeout=test_one_driver.TIMEOUT)  # fmt: skip
    verdict, trend = printed["verdict"], printed["results"]["trend"]
    print(verdict["decision"], trend)
    objective = spec["analysis"]["objectives"]["minSeriesReduction"]
    assert verdict["decision"] != "Promote", verdict
    assert trend["slopePerHour"]["ciHigh"] < 0 and trend["adverse"], trend
    assert trend["projectedAtEnd"]["estimate"] < objective, trend
    # the mean over the run overstates what the candidate keeps by the end
    assert printed["results"]["seriesReduction"]["estimate"] > trend["projectedAtEnd"]["estimate"], printed["results"]
    if verdict["decision"] == "Inconclusive":  # a Reject's reasons are the objectives it missed
        told = [r for r in verdict["reasons"] if "series reduction's trend" in r]
        assert told and "/h" in told[0], verdict["reasons"]
    # the verdict's saved input gives the same verdict offline
    replayed = _phoenix("analyze", "-f", str(saved))
    assert replayed["decision"] == verdict["decision"] and replayed["reasons"] == verdict["reasons"], replayed
    assert replayed["seriesTrend"]["projectedAtEnd"]["estimate"] == trend["projectedAtEnd"]["estimate"]
