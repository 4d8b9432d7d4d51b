"""Every config the templates produce is accepted by the real otelcol-phoenix."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from phoenix_operator import binaries
from phoenix_operator.models import kinds
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import collector
from phoenix_operator.render import pipeline as render_pipeline
from tests import conftest, render_cases
from tests.harness import otlp
from tests.unit import test_render

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("name", sorted(render_cases.CASES))
def test_collector_validates_every_golden_config(name: str) -> None:
    binaries.require(binaries.OTELCOL)
    collector.validate(render_cases.rendered(name))


@pytest.mark.parametrize("value", test_render.HOSTILE)
def test_collector_validates_configs_rendered_from_hostile_values(value: str) -> None:
    rendered = render_pipeline.render(test_render._hostile_candidate(value), experiment=value, variant="candidate")
    collector.validate(rendered)


def test_collector_rejects_a_broken_config() -> None:
    rendered = render_cases.rendered("baseline-defaults")
    broken = render_pipeline.RenderedConfig(
        rendered.text.replace("limit_mib: 512", "limit_mib: lots"), rendered.config, "", (), 512
    )
    with pytest.raises(collector.CollectorRejected, match="limit_mib"):
        collector.validate(broken)


def test_collector_does_not_expand_references_in_parameters(
    otelcol: conftest.StartCollector,
) -> None:
    """A label value of `${env:HOME}` must be exported as those characters, not a path."""
    hostile = "${env:HOME}"

    def render(listen: render_pipeline.Listen) -> str:
        spec = render_cases.spec("baseline-defaults")
        return render_pipeline.render(spec, experiment=hostile, variant="baseline", listen=listen).text

    running = otelcol(render)
    assert otlp.post(running.otlp_http_url, otlp.gauge_request("phoenix.inert", 1.0, {})) == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        exported = httpx.get(f"http://{running.metrics_address}/metrics", timeout=5).text
        if "phoenix_inert" in exported:
            break
        time.sleep(0.2)
    assert 'phoenix_experiment="${env:HOME}"' in exported


def test_pipelines_of_one_spec_share_one_check_by_the_collector() -> None:
    def pipeline(name: str, spec: dict[str, Any]) -> kinds.PhoenixProcessPipeline:
        return kinds.PhoenixProcessPipeline.model_validate(
            {"apiVersion": "phoenix.io/v1alpha1", "kind": "PhoenixProcessPipeline",
             "metadata": {"name": name, "namespace": "ns", "uid": name}, "spec": spec}
        )  # fmt: skip

    alike = [pipeline(f"p{i}", {"template": "baseline"}) for i in range(5)]
    other = pipeline("c", {"template": "candidate", "parameters": {"dropMetrics": ["process.memory.virtual"]}})
    assert len({reconcile_pipeline.render(p).text for p in alike}) == 5, "each config labels its own series"
    shapes = {reconcile_pipeline.shape(p).text for p in alike}
    assert len(shapes) == 1 and shapes != {reconcile_pipeline.shape(other).text}
    checked = collector._refusal.cache_info().misses
    for p in alike:
        assert collector.refusal(reconcile_pipeline.shape(p)) is None
    assert collector._refusal.cache_info().misses <= checked + 1  # one collector run at most, for all five
