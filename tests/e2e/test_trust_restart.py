"""A candidate collector that hangs mid-run and is killed, with real collectors, LoadSim and Prometheus.

The candidate hangs (SIGSTOP) in the middle of `phoenix run --local` and is
then SIGKILLed, as a liveness probe would: the local runtime starts it again
on its ports, as a pod's container restarts. The verdict must flag the
restart on the candidate with its pattern, and the batches the LoadSim could
not deliver to the hung candidate, read from the LoadSim's own counters, must
refuse a Promote and be named in the reasons.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.e2e import test_one_driver

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]
# Early enough that the samples after the restart are in the verdict
HANG_AFTER_MEASUREMENTS = 3
# Longer than a request's retries take to fail (4 tries of a 5 s timeout, plus backoff), so the
# LoadSim gives up on some batches to the hung candidate
HANG_SECONDS = 25


def _candidate_collector(registry: Path, name: str) -> int:
    started: dict[str, str] = json.loads(registry.read_text())
    for pid in (p for p, argv0 in started.items() if "otelcol" in argv0):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:  # the registry keeps every process the run started, ended ones too
            continue
        if f"{name}-candidate" in cmdline:
            return int(pid)
    raise AssertionError(f"no candidate collector among {started}")


def test_a_hung_then_killed_candidate_is_flagged_and_its_lost_batches_refuse_a_promote(tmp_path: Path) -> None:
    manifest = test_one_driver.small_quickstart()
    manifest["metadata"] = {"name": "restart"}
    manifest["spec"]["analysis"]["mode"] = "fixed"  # every sample, the restart's too, is in the verdict
    manifest["spec"]["duration"] = "150s"  # it runs to its end: time enough after the warmup, the hang and the restart
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
            measurements += "] series baseline" in line or "] no decision" in line
            if not killed and measurements >= HANG_AFTER_MEASUREMENTS:
                candidate = _candidate_collector(tmp_path / "run" / "processes.json", "restart")
                os.kill(candidate, signal.SIGSTOP)
                threading.Timer(HANG_SECONDS, os.kill, (candidate, signal.SIGKILL)).start()
                killed = True
        printed = json.loads(run.stdout.read() or "null")
        run.wait(timeout=30)
    finally:
        run.kill()
    assert killed and printed is not None, "".join(lines)
    anomalies = printed["results"]["anomalies"]
    restarts = [s for s in anomalies["samples"] if s["pattern"] == "collector restart"]
    assert restarts and {s["variant"] for s in restarts} == {"candidate"}, anomalies
    reasons = printed["verdict"]["reasons"]
    inputs = printed["results"]["inputAgreement"]
    assert inputs["baselineBatchesFailed"] == 0 and inputs["candidateBatchesFailed"] > 0, inputs
    assert inputs["baselineBatchesSent"] > 0 and inputs["candidateBatchesSent"] > 0, inputs
    assert not inputs["agrees"] and printed["verdict"]["decision"] == "Inconclusive", printed["verdict"]
    assert any(r.startswith("the candidate received less") for r in reasons), reasons
    # the progress said so before the verdict
    assert "no Promote while the inputs differ" in " ".join("".join(lines).split())
    if anomalies["share"] > anomalies["limit"]:
        told = [r for r in reasons if "of the samples are anomalous" in r]
        assert told and "collector restart on the candidate" in told[0], reasons
