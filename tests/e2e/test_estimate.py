"""`phoenix estimate` against what real collectors export: both modes within 5% of the measured series."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from ruamel import yaml

from phoenix_operator.loadsim import run as loadsim_run
from phoenix_operator.models import loadsim, pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local_components
from tests import conftest
from tests.harness import controlplane

pytestmark = pytest.mark.e2e
PHOENIX = [sys.executable, "-m", "phoenix_operator"]
QUICKSTART = controlplane.REPO / "examples" / "quickstart" / "experiment.yaml"
HIGH_CARDINALITY = {"profile": "high-cardinality", "hosts": 3, "processesPerHost": 40, "intervalSeconds": 1,
                    "duration": "6s", "seed": 9}  # fmt: skip
KEEPING_POSTGRES = {
    "dropMetrics": ["process.memory.virtual"],
    "aggregateAwayAttributes": ["process.pid", "process.parent_pid", "process.command_line", "process.command"],
    "keepProcesses": {"executableNames": ["postgres"]},
}


def _quickstart() -> tuple[dict[str, Any], dict[str, Any]]:
    """The quickstart's load and candidate, the load sent in seconds rather than minutes."""
    spec = yaml.YAML(typ="safe", pure=True).load(QUICKSTART.read_text())["spec"]
    return {**spec["load"]["loadSim"], "intervalSeconds": 1, "duration": "6s"}, spec["candidate"]["parameters"]


def _renderer(variant: pipeline.PipelineVariant, name: str) -> Callable[..., str]:
    def render(listen: render_pipeline.Listen) -> str:
        return render_pipeline.render(variant, experiment="estimate", variant=name, listen=listen).text

    return render


def _count(url: str, selector: str) -> int:
    body = httpx.get(f"{url}/api/v1/query", params={"query": f"count({selector})"}, timeout=10).json()
    result = body["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


def _estimate(path: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [*PHOENIX, "estimate", "-f", str(path), "-o", "json", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


@pytest.mark.alone
@pytest.mark.parametrize(
    ("load", "parameters"),
    [_quickstart(), (HIGH_CARDINALITY, KEEPING_POSTGRES)],
    ids=["quickstart", "high-cardinality"],
)
def test_both_modes_predict_the_series_real_collectors_export(
    otelcol: conftest.StartCollector,
    prometheus: conftest.StartPrometheus,
    tmp_path: Path,
    load: dict[str, Any],
    parameters: dict[str, Any],
) -> None:
    baseline = pipeline.BaselineVariant(template="baseline")
    candidate = pipeline.CandidateVariant.model_validate({"template": "candidate", "parameters": parameters})
    collectors = [
        otelcol(_renderer(baseline, "baseline"), "baseline"),
        otelcol(_renderer(candidate, "candidate"), "candidate"),
    ]
    server = prometheus([local_components.ScrapeTarget(f"c{i}", c.metrics_address) for i, c in enumerate(collectors)])
    summary = loadsim_run.run(loadsim.LoadProfileSpec.model_validate(load), [c.otlp_http_url for c in collectors])
    assert [t.send_errors for t in summary.targets] == [0, 0]
    selector = '{{__name__=~"process_.+", phoenix_variant="{}"}}'
    measured: dict[str, int] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until both variants' last batch is scraped
        now = {v: _count(server.url, selector.format(v)) for v in ("baseline", "candidate")}
        if now == measured and all(now.values()):
            break
        measured = now
        time.sleep(2)
    assert all(measured.values()), f"no steady series count on both variants within 30 s: {measured}"
    manifest = tmp_path / "experiment.yaml"
    experiment = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixExperiment",
        "metadata": {"name": "estimate"},
        "spec": {
            "baseline": {"template": "baseline"},
            "candidate": {"template": "candidate", "parameters": parameters},
            "load": {"loadSim": load},
        },
    }
    with manifest.open("w") as stream:
        yaml.YAML().dump(experiment, stream)
    offline = _estimate(manifest)
    counted = _estimate(manifest, "--prometheus", server.url, "--match", selector.format("baseline"))
    for mode, predicted in (("profile", offline), ("prometheus", counted)):
        for variant in ("baseline", "candidate"):
            series = predicted[variant]["activeSeries"]
            error = series / measured[variant] - 1
            print(f"{mode} {variant}: predicted {series}, measured {measured[variant]}, error {error:+.1%}")
            assert abs(error) <= 0.05, (mode, variant, predicted, measured)
    # every change's share is reported, most saving first
    assert {s["change"] for s in offline["shares"]} == {
        "dropping process.memory.virtual",
        *(f"aggregating away {a}" for a in parameters["aggregateAwayAttributes"]),
    }
