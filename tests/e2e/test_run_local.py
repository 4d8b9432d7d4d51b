"""`phoenix run --local` as a user runs it: real collectors, LoadSim and Prometheus."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel import yaml

from phoenix_operator.loadsim import fleet
from phoenix_operator.models import loadsim
from phoenix_operator.runtime import local as runtime_local
from tests.harness import operator as harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]
REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples/quickstart/experiment.yaml"
PHOENIX = [sys.executable, "-m", "phoenix_operator"]


@pytest.fixture(autouse=True)
def no_strays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each run this test starts keeps its work directory under the test's own TMPDIR.

    Every process a run starts has that directory in its command line (collectors,
    Prometheus) or inherits it in its environment (the run, LoadSim), so what is
    left behind is this test's alone, whatever other tests run beside it.
    """
    marker = tmp_path / "runs"
    marker.mkdir()
    monkeypatch.setenv("TMPDIR", str(marker))
    yield
    deadline = time.monotonic() + 10
    while harness.started_under(str(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert harness.started_under(str(marker)) == [], "a local run left processes behind"


def _run(*args: str, timeout: float = 420) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PHOENIX, "run", "--local", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _manifest(tmp_path: Path, source: Path, edit: dict[str, Any]) -> str:
    document = yaml.YAML(typ="safe", pure=True).load(source.read_text())
    document["spec"].update(edit)
    path = tmp_path / "experiment.yaml"
    stream = path.open("w")
    yaml.YAML().dump(document, stream)
    stream.close()
    return str(path)


@pytest.mark.alone
def test_quickstart_promotes_with_the_reduction_it_promises(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = _run("-f", str(QUICKSTART), "-o", "json", "--report", str(report))
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["verdict"]["decision"] == "Promote", (status["verdict"]["reasons"], status["results"])
    results = status["results"]
    assert results["seriesReduction"]["estimate"] >= 0.8
    assert results["seriesReduction"]["ciLow"] > 0.5
    assert results["fidelity"]["checked"] == results["fidelity"]["passed"] == 3
    assert results["monthlySavingsUsd"]["estimate"] > 0
    # LoadSim's estimate of live series is what the baseline exports, give or take
    # the churned pids whose last sample is still inside Prometheus's lookback
    manifest = yaml.YAML(typ="safe", pure=True).load(QUICKSTART.read_text())
    spec = manifest["spec"]["load"]["loadSim"]
    expected = fleet.estimate(loadsim.LoadProfileSpec.model_validate(spec)).active_series
    lookback = runtime_local.lookback_seconds(spec["intervalSeconds"])
    lingering = spec["hosts"] * spec["churnPerMinute"] * fleet.POINTS_PER_PROCESS * lookback / 60
    measured = results["baseline"]["activeSeries"]
    assert expected <= measured <= expected + lingering + 2 * 3  # + target_info per collector
    # each live series gets a point per load interval, however often Prometheus
    # scrapes; rate() over steps every 5 s reads a few percent low
    per_minute = expected * 60 / spec["intervalSeconds"]
    assert abs(results["baseline"]["datapointsPerMinute"] - per_minute) < 0.05 * per_minute
    # the pre-flight estimate of the candidate's series, against what it exported
    estimated = subprocess.run(
        [*PHOENIX, "estimate", "-f", str(QUICKSTART), "-o", "json"], capture_output=True, text=True, timeout=60
    )
    assert estimated.returncode == 0, estimated.stderr
    predicted, measured_candidate = json.loads(estimated.stdout)["candidate"]["activeSeries"], results["candidate"]
    error = predicted / measured_candidate["activeSeries"] - 1
    print(
        f"estimate: candidate {predicted} series predicted, {measured_candidate['activeSeries']} measured, {error:+.1%}"
    )
    assert abs(error) <= 0.05
    page = report.read_text()
    assert "Promote: quickstart" in page
    assert page.count("<svg") == 5  # series, reduction sequence, three queries
    assert "progress" not in result.stdout
    assert "series baseline" in result.stderr  # progress lines go to stderr


@pytest.mark.parametrize(
    ("stop_signal", "at"),
    [(signal.SIGINT, "analysis"), (signal.SIGTERM, "analysis"), (signal.SIGINT, "warmup")],
    ids=["ctrl-c", "sigterm", "ctrl-c-in-warmup"],
)
def test_interrupt_stops_everything_and_reports_what_was_measured(
    tmp_path: Path, stop_signal: signal.Signals, at: str
) -> None:
    # analysed from 20 s on at the latest, so the first progress line comes soon; a fifth of the load is enough
    load = yaml.YAML(typ="safe", pure=True).load(QUICKSTART.read_text())["spec"]["load"]
    load["loadSim"]["processesPerHost"] //= 5
    manifest = _manifest(tmp_path, QUICKSTART, {"warmup": "20s", "analysisInterval": "5s", "load": load})
    run = subprocess.Popen(
        [*PHOENIX, "run", "--local", "-f", manifest, "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert run.stderr is not None
    trigger = ("samples", "series baseline") if at == "analysis" else ("warming up",)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = run.stderr.readline()
        if any(text in line for text in trigger) or not line:
            break
    run.send_signal(stop_signal)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "interrupted; the results below are partial" in stderr
    status = json.loads(stdout)
    assert status["phase"] == "Aborted"
    analysed = (status.get("results") or {}).get("samplesUsed", 0)
    assert analysed > 0 if at == "analysis" else analysed == 0


def test_missing_file_is_one_line() -> None:
    result = _run("-f", "/nonexistent/experiment.yaml")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: /nonexistent/experiment.yaml: no such file"


def test_invalid_experiment_lists_its_problems(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, QUICKSTART, {"duration": "-3m", "warmup": "soon"})
    result = _run("-f", manifest)
    assert result.returncode == 1
    assert "spec.duration: invalid value '-3m'" in result.stderr
    assert "spec.warmup: invalid value 'soon'" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_refused() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _run("-f", str(QUICKSTART), "--prometheus-port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"error: port {port} is already in use")


def test_a_collector_that_fails_to_start_shows_its_stderr(tmp_path: Path) -> None:
    broken = tmp_path / "otelcol-broken"
    # accepts every config, as the real one does the quickstart's, then fails to start
    broken.write_text(
        "#!/bin/sh\n[ \"$1\" = validate ] && exit 0\necho 'cannot load config: simulated failure' >&2\nexit 3\n"
    )
    broken.chmod(0o755)
    result = _run("-f", str(QUICKSTART), "--otelcol", str(broken))
    assert result.returncode == 1
    assert "the baseline collector failed to start" in result.stderr
    assert "exited (code 3)" in result.stderr
    assert "cannot load config: simulated failure" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_binary_says_how_to_get_it(tmp_path: Path) -> None:
    env = {**os.environ, "PHOENIX_OTELCOL": str(tmp_path / "nothing-here")}
    result = subprocess.run(
        [*PHOENIX, "run", "--local", "-f", str(QUICKSTART)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "otelcol-phoenix not found: run `make tools`" in result.stderr
