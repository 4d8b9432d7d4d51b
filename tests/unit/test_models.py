"""Every validation rule of the models, as a user meets it: one problem with its path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ruamel import yaml

from phoenix_operator.models import common, experiment, kinds, manifests

REPO = Path(__file__).resolve().parents[2]


def _quickstart() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.YAML(typ="safe", pure=True).load(
        (REPO / "examples/quickstart/experiment.yaml").read_text()
    )
    return loaded


def _problems(document: dict[str, Any]) -> list[str]:
    try:
        manifests.parse_object(document)
    except manifests.InvalidManifest as error:
        return [str(p) for p in error.problems]
    return []


def _with(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(_quickstart())
    node = document
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return document


def test_quickstart_is_valid() -> None:
    obj = manifests.parse_object(_quickstart())
    assert isinstance(obj, kinds.PhoenixExperiment)
    assert obj.spec.analysis.mode == "sequential"
    assert obj.spec.load.load_sim.profile == "process-churn"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("spec.duration", "-5m", "spec.duration: invalid value '-5m': expected a duration"),
        ("spec.duration", "10 minutes", "spec.duration: invalid value '10 minutes'"),
        ("spec.warmup", "5m", "warmup (5m) must be shorter than duration (4m)"),
        (
            "spec.analysisInterval",
            "1h",
            "analysisInterval (1h) must be positive and no longer than duration",
        ),
        (
            "spec.analysis.objectives.minSeriesReduction",
            1.5,
            "spec.analysis.objectives.minSeriesReduction: Input should be less than or equal to 1",
        ),
        (
            "spec.analysis.objectives.maxQueryError",
            -0.1,
            "spec.analysis.objectives.maxQueryError: Input should be greater than or equal to 0",
        ),
        ("spec.analysis.alpha", 0.0, "spec.analysis.alpha: Input should be greater than 0"),
        (
            "spec.driftWatch",
            {"duration": "1h", "interval": "2h"},
            "driftWatch.interval (2h) must be positive and no longer than its duration (1h)",
        ),
        ("spec.driftWatch.tolerance", 1.5, "spec.driftWatch.tolerance: Input should be less than or equal to 1"),
        ("spec.analysis.mode", "bayesian", "spec.analysis.mode: invalid value 'bayesian'"),
        (
            "metadata.name",
            "Quick_Start",
            "metadata.name: invalid value 'Quick_Start': expected a DNS label",
        ),
        ("spec.candidate.template", "magic", "spec.candidate.template: unknown template 'magic'"),
        ("spec.baseline.template", "magic", "spec.baseline.template: unknown template 'magic'"),
        (
            "spec.candidate.parameters.dropMetrics",
            ["ok", "bad name"],
            "spec.candidate.parameters.dropMetrics[1]: invalid value 'bad name'",
        ),
        (
            "spec.candidate.parameters.aggregateAwayAttributes",
            "process.pid",
            "spec.candidate.parameters.aggregateAwayAttributes: Input should be a valid list",
        ),
        (
            "spec.candidate.parameters.seriesBudget",
            10,
            "spec.candidate.parameters.seriesBudget: unknown field",
        ),
        (
            "spec.load.loadSim.hosts",
            0,
            "spec.load.loadSim.hosts: Input should be greater than or equal to 1",
        ),
        (
            "spec.load.loadSim.churnPerMinute",
            -1,
            "spec.load.loadSim.churnPerMinute: Input should be greater than or equal to 0",
        ),
        ("spec.load.loadSim.duration", "0s", "duration must be positive"),
        ("spec.promotion.policy", "auto", "policy auto needs targetPipelineRef"),
        ("spec.load.source", "mirror", "load.source mirror copies the input of the baseline's pipelineRef"),
        ("spec.load.mirror.fraction", 0, "spec.load.mirror.fraction: Input should be greater than 0"),
        (
            "spec.baseline",
            {"pipelineRef": "prod/process-metrics"},
            "spec.baseline.pipelineRef: 'prod/process-metrics' names another namespace",
        ),
        (
            "spec.analysis.criticalQueries",
            [{"name": "a", "query": "up"}, {"name": "a", "query": "up"}],
            "critical query names must be unique, repeated: a",
        ),
        (
            "spec.ttlSecondsAfterFinished",
            -1,
            "spec.ttlSecondsAfterFinished: Input should be greater than or equal to 0",
        ),
        (
            "spec.analysis.prometheus",
            {"url": "https://p:9090", "tls": {"cert": {"name": "c", "key": "tls.crt"}}},
            "cert and key go together",
        ),
        (
            "spec.analysis.prometheus",
            {"url": "http://p:9090", "tls": {"ca": {"name": "c", "key": "ca.crt"}}},
            "tls needs an https:// url",
        ),
        (
            "spec.analysis.prometheus",
            {
                "url": "https://p:9090",
                "secretRef": {"name": "t", "key": "token"},
                "basicAuth": {"username": {"name": "b", "key": "u"}, "password": {"name": "b", "key": "p"}},
            },
            "give a bearer token (secretRef) or basicAuth, not both",
        ),
        ("spec.surprise", True, "spec.surprise: unknown field"),
        ("kind", "PhoenixThing", "kind: unknown kind 'PhoenixThing'"),
        ("apiVersion", "phoenix.io/v2", "apiVersion: invalid value 'phoenix.io/v2'"),
    ],
)
def test_each_rule_gives_one_clear_problem(path: str, value: Any, expected: str) -> None:
    problems = _problems(_with(path, value))
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_missing_required_field_names_its_path() -> None:
    document = _quickstart()
    del document["spec"]["candidate"]
    assert _problems(document) == ["spec.candidate: required field is missing"]


def test_all_problems_are_reported_at_once() -> None:
    document = _with("spec.duration", "-1m")
    document["spec"]["load"]["loadSim"]["hosts"] = -3
    document["spec"]["analysis"]["alpha"] = 7
    assert len(_problems(document)) == 3


def test_adaptive_min_k_cannot_exceed_max_k() -> None:
    document = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "adaptive"},
        "spec": {"template": "adaptive", "parameters": {"seriesBudget": 100, "minK": 9, "maxK": 3}},
    }
    assert _problems(document) == ["spec.parameters: minK (9) must not exceed maxK (3)"]


def test_baseline_may_reference_an_existing_pipeline() -> None:
    obj = manifests.parse_object(_with("spec.baseline", {"pipelineRef": "production"}))
    assert isinstance(obj, kinds.PhoenixExperiment)
    assert obj.spec.baseline == experiment.PipelineRef(pipeline_ref="production")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25)])
def test_duration_seconds(text: str, seconds: float) -> None:
    assert common.duration_seconds(text) == seconds


def test_wire_form_is_camel_case_and_round_trips() -> None:
    obj = manifests.parse_object(_quickstart())
    wire = obj.to_wire()
    assert wire["spec"]["analysisInterval"] == "2s"
    assert manifests.parse_object(wire) == obj


@pytest.mark.parametrize(
    ("collector", "expected"),
    [
        ({"autoscaling": {"minReplicas": 4, "maxReplicas": 2}}, "minReplicas (4) must not exceed maxReplicas (2)"),
        ({"mode": "daemonset", "autoscaling": {"maxReplicas": 3}}, "autoscaling needs mode deployment"),
    ],
)
def test_a_collector_autoscales_only_as_a_deployment_within_its_bounds(
    collector: dict[str, Any], expected: str
) -> None:
    document = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "scaled"},
        "spec": {"template": "baseline", "collector": collector},
    }
    problems = _problems(document)
    assert len(problems) == 1 and expected in problems[0], problems
