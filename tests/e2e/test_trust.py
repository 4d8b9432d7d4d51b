"""Verdicts on misbehaving data, with real collectors, LoadSim and Prometheus.

A candidate collector SIGKILLed in the middle of `phoenix run --local`: the
local runtime starts it again on its ports, as a pod's container restarts,
and the verdict must flag the restart on the candidate with its pattern, and
follow the anomaly rule: no verdict above maxAnomalyShare, else the one the
data give.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e import test_one_driver

pytestmark = pytest.mark.e2e
KILL_AFTER_MEASUREMENTS = 8


def _candidate_collector(registry: Path, name: str) -> int:
    started: dict[str, str] = json.loads(registry.read_text())
    for pid in started:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        if "otelcol" in started[pid] and f"{name}-candidate" in cmdline:
            return int(pid)
    raise AssertionError(f"no candidate collector among {started}")


def test_a_killed_candidate_collector_is_flagged_as_a_restart(tmp_path: Path) -> None:
    manifest = test_one_driver.small_quickstart()
    manifest["metadata"] = {"name": "restart"}
    manifest["spec"]["analysis"]["mode"] = "fixed"  # every sample, the restart's too, is in the verdict
    source = tmp_path / "restart.yaml"
    source.write_text(yaml.safe_dump(manifest))
    run = subprocess.Popen(
        [sys.executable, "-m", "phoenix_operator", "run", "--local", "-f", str(source), "-o", "json",
         *test_one_driver.MEASURE_STEP, "--workdir", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert run.stderr is not None and run.stdout is not None
    measurements, killed, lines = 0, False, []
    try:
        for line in run.stderr:
            lines.append(line)
            measurements += "series baseline" in line
            if not killed and measurements >= KILL_AFTER_MEASUREMENTS:
                os.kill(_candidate_collector(tmp_path / "run" / "processes.json", "restart"), signal.SIGKILL)
                killed = True
        printed = json.loads(run.stdout.read() or "null")
        run.wait(timeout=30)
    finally:
        run.kill()
    assert killed and printed is not None, "".join(lines)
    anomalies = printed["results"]["anomalies"]
    restarts = [s for s in anomalies["samples"] if s["pattern"] == "collector restart"]
    assert restarts and {s["variant"] for s in restarts} == {"candidate"}, anomalies
    decision = printed["verdict"]["decision"]
    if anomalies["share"] > anomalies["limit"]:
        assert decision == "Inconclusive"
        told = [r for r in printed["verdict"]["reasons"] if "of the samples are anomalous" in r]
        assert told and "collector restart on the candidate" in told[0], printed["verdict"]["reasons"]
    else:
        assert decision == "Promote", printed["verdict"]
