"""Templates render into the configs we mean, and parameters can never become config."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ruamel import yaml

from phoenix_operator.models import kinds, pipeline
from phoenix_operator.render import checks
from phoenix_operator.render import pipeline as render_pipeline
from tests import render_cases

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name", sorted(render_cases.CASES))
def test_golden(name: str) -> None:
    text = render_cases.rendered(name).text
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("PHOENIX_UPDATE_GOLDEN"):
        # CI compares with what is committed; rewriting the golden files there would pass anything
        assert os.environ.get("CI") != "true", "PHOENIX_UPDATE_GOLDEN is refused under CI"
        golden.write_text(text)
    assert golden.is_file(), f"{golden} missing: run with PHOENIX_UPDATE_GOLDEN=1 and review it"
    assert text == golden.read_text()


# scalars whose type YAML 1.1 and 1.2 resolve differently, or that look like numbers, times or nulls
TRICKY_SCALARS = ["yes", "No", "on", "OFF", "y", "010", "0o10", "0x1F", "1:20", "1_000", "1e3", ".inf", "-.Inf",
                  ".nan", "~", "null", "", "True", "FALSE", "2026-12-07", "0.5", "+12", "0b101", "'on'"]  # fmt: skip


@pytest.mark.parametrize("name", sorted(render_cases.CASES))
def test_the_operators_loader_parses_every_config_as_ruamels_default_loader_does(name: str) -> None:
    text = render_cases.rendered(name).text
    assert "%YAML" not in text  # the fixed version holds only without a directive
    assert render_pipeline._parse(text) == yaml.YAML(typ="safe").load(text)


def test_the_operators_loader_resolves_scalars_by_yaml_1_2() -> None:
    text = "".join(f"k{i}: {value}\n" for i, value in enumerate(TRICKY_SCALARS))
    ours, default = render_pipeline._parse(text), yaml.YAML(typ="safe").load(text)
    assert repr(ours) == repr(default)  # repr: nan is unequal to itself
    assert ours["k0"] == "yes" and ours["k2"] == "on" and ours["k5"] == 10 and ours["k8"] == "1:20"


def _processors(name: str) -> list[str]:
    config = render_cases.rendered(name).config
    names: list[str] = config["service"]["pipelines"]["metrics"]["processors"]
    return names


def test_candidate_reduces_on_the_resource_then_merges_then_sums() -> None:
    processors = _processors("candidate-aggregate")
    assert processors == [
        "memory_limiter",
        "filter/drop_metrics",
        "cumulativetodelta",
        "transform/aggregate_away",
        "groupbyattrs/compact",
        "metrics_transform/sum_processes",
        "batch",
    ]
    config = render_cases.rendered("candidate-aggregate").config
    transform = config["processors"]["transform/aggregate_away"]["metric_statements"][0]
    assert transform["context"] == "resource"
    assert transform["statements"] == [
        'delete_key(attributes, "process.pid")',
        'delete_key(attributes, "process.parent_pid")',
        'delete_key(attributes, "process.command_line")',
    ]
    # the filter processor drops what matches, so dropped metrics are its conditions
    assert config["processors"]["filter/drop_metrics"]["metrics"]["metric"] == [
        'name == "process.memory.virtual"',
        'name == "process.disk.io"',
    ]
    assert config["processors"]["cumulativetodelta"]["initial_value"] == "drop"


def test_kept_executables_are_excluded_from_aggregation() -> None:
    config = render_cases.rendered("candidate-keep-processes").config
    condition = config["processors"]["transform/aggregate_away"]["metric_statements"][0]["conditions"]
    assert condition == [
        'not (attributes["process.executable.name"] == "postgres" or attributes["process.executable.name"] == "java")'
    ]


def test_adaptive_keeps_at_most_max_k_executables() -> None:
    config = render_cases.rendered("adaptive-budget").config
    condition = config["processors"]["transform/other"]["metric_statements"][0]["conditions"][0]
    assert '"nginx"' in condition and '"redis"' in condition and '"mysqld"' not in condition


def test_adaptive_sums_every_other_process_into_other_per_host() -> None:
    initial = render_cases.rendered("adaptive-initial").config
    statements = initial["processors"]["transform/other"]["metric_statements"][0]
    assert "conditions" not in statements  # nothing kept yet: every process is summed
    assert statements["statements"] == [
        'delete_matching_keys(attributes, "^process\\\\.")',
        'set(attributes["process.executable.name"], "other")',
    ]
    pipelines = initial["service"]["pipelines"]
    assert pipelines["metrics/ranked"]["exporters"] == ["prometheus"]


def test_attributes_a_critical_query_needs_survive_the_sum() -> None:
    statements = render_cases.rendered("adaptive-protected").config["processors"]["transform/other"][
        "metric_statements"
    ][0]["statements"]
    assert 'set(attributes["phoenix.keep.process.owner"], attributes["process.owner"])' in statements
    # a query grouping by executable keeps the names: none becomes `other`
    assert not any('"other"' in statement for statement in statements)


def test_the_adaptive_render_follows_the_keep_list() -> None:
    hashes = {render_cases.rendered(name).config_hash for name in ("adaptive-initial", "adaptive-budget")}
    assert len(hashes) == 2


def test_prometheus_exporter_labels_and_expiration() -> None:
    exporter = render_cases.rendered("baseline-defaults").config["exporters"]["prometheus"]
    assert exporter["const_labels"] == {
        "phoenix_experiment": "golden",
        "phoenix_variant": "baseline",
    }
    assert exporter["resource_to_telemetry_conversion"] == {"enabled": True}
    assert exporter["metric_expiration"] == "30s"


def test_secret_headers_are_env_references_never_values() -> None:
    result = render_cases.rendered("candidate-extra-exporter")
    headers = result.config["exporters"]["otlp_http/vendor"]["headers"]
    assert headers == {"api-key": "${env:PHOENIX_HEADER_VENDOR_API_KEY}"}
    assert [(s.env_var, s.secret.name, s.secret.key) for s in result.secret_env] == [
        ("PHOENIX_HEADER_VENDOR_API_KEY", "vendor", "api-key")
    ]
    assert result.config["service"]["pipelines"]["metrics"]["exporters"] == [
        "prometheus",
        "otlp_http/vendor",
    ]


def test_config_hash_is_stable_and_tracks_content() -> None:
    first = render_cases.rendered("candidate-aggregate")
    again = render_cases.rendered("candidate-aggregate")
    other = render_cases.rendered("candidate-drop-only")
    assert first.config_hash == again.config_hash
    assert first.config_hash != other.config_hash
    assert render_pipeline.config_hash({"a": 1, "b": 2}) == render_pipeline.config_hash({"b": 2, "a": 1})


HOSTILE = [
    "{{ 7*7 }}",
    '}}\nexporters:\n  otlp_http/evil:\n    endpoint: "http://evil"',
    '"\nservice: {}',
    "${env:HOME}",
    "${file:/etc/passwd}",
    '") or true or ("',
    "{% raw %}x{% endraw %}",
    '\\"\\n',
]


def _hostile_candidate(value: str) -> pipeline.CandidateVariant:
    """A candidate built without validation, as if every model check were bypassed."""
    parameters = pipeline.CandidateParameters.model_construct(
        memory_limit_mib=512,
        batch_timeout="1s",
        metric_expiration="30s",
        drop_metrics=[value],
        aggregate_away_attributes=[value],
        keep_processes=pipeline.KeepProcesses.model_construct(executable_names=[value]),
    )
    return pipeline.CandidateVariant.model_construct(template="candidate", parameters=parameters)


def _shape(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_shape(v) for v in node]
    return type(node).__name__


# Each hostile value as the OTTL string literal the config must carry, written
# out by hand: JSON escapes, and `$$`, which the collector reads as a literal `$`.
INERT_LITERALS = [
    r'"{{ 7*7 }}"',
    r'"}}\nexporters:\n  otlp_http/evil:\n    endpoint: \"http://evil\""',
    r'"\"\nservice: {}"',
    r'"$${env:HOME}"',
    r'"$${file:/etc/passwd}"',
    r'"\") or true or (\""',
    r'"{% raw %}x{% endraw %}"',
    r'"\\\"\\n"',
]


@pytest.mark.parametrize(("value", "literal"), list(zip(HOSTILE, INERT_LITERALS, strict=True)))
def test_hostile_parameters_stay_inert_strings(value: str, literal: str) -> None:
    reference = render_pipeline.render(_hostile_candidate("x"), experiment="e", variant="candidate")
    result = render_pipeline.render(_hostile_candidate(value), experiment=value, variant="candidate")
    assert _shape(result.config) == _shape(reference.config)
    processors = result.config["processors"]
    assert processors["filter/drop_metrics"]["metrics"]["metric"] == [f"name == {literal}"]
    assert processors["transform/aggregate_away"]["metric_statements"][0]["statements"] == [
        f"delete_key(attributes, {literal})"
    ]
    labels = result.config["exporters"]["prometheus"]["const_labels"]
    assert labels["phoenix_experiment"] == value.replace("$", "$$")


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_parameters_are_rejected_by_validation(value: str) -> None:
    with pytest.raises(ValueError, match="dropMetrics"):
        pipeline.CandidateParameters.model_validate({"dropMetrics": [value]})


def test_structure_check_names_undefined_and_unused_components() -> None:
    config = {
        "receivers": {"otlp": {}},
        "processors": {"batch": {}, "unused": {}},
        "exporters": {"prometheus": {}},
        "service": {
            "pipelines": {
                "metrics": {
                    "receivers": ["otlp"],
                    "processors": ["batch", "ghost"],
                    "exporters": ["prometheus"],
                }
            }
        },
    }
    assert checks.structure_problems(config) == [
        "service.pipelines.metrics.processors: 'ghost' is not defined",
        "processors.unused: defined but used by no pipeline",
    ]


def test_the_newrelic_preset_is_otlp_http_to_new_relic_with_the_license_key_header() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "newrelic" / "pipeline.yaml"
    documents = yaml.YAML(typ="safe", pure=True).load_all(example.read_text())
    (manifest,) = [d for d in documents if d["kind"] == "PhoenixProcessPipeline"]  # beside the key's Secret
    obj = kinds.PhoenixProcessPipeline.model_validate(manifest)
    result = render_pipeline.render(obj.spec, experiment="nr", variant="candidate")
    assert result.config["exporters"]["otlp_http/newrelic"] == {
        "endpoint": "https://otlp.nr-data.net",
        "headers": {"api-key": "${env:PHOENIX_HEADER_NEWRELIC_API_KEY}"},
    }
    assert [(s.env_var, s.secret.name, s.secret.key) for s in result.secret_env] == [
        ("PHOENIX_HEADER_NEWRELIC_API_KEY", "newrelic-license", "license-key")
    ]


@pytest.mark.parametrize(
    ("container_limit", "limiter"),
    [("4Gi", 2048), ("1Gi", 819), ("1G", 762), (1073741824, 819), ("256Mi", 204), ("lots", 2048)],
)
def test_the_memory_limiter_refuses_before_the_container_is_killed(container_limit: object, limiter: int) -> None:
    """80% of the container's memory limit caps the memory_limiter, so the collector sheds load and lives."""
    spec = pipeline.BaselinePipelineSpec.model_validate(
        {
            "template": "baseline",
            "parameters": {"memoryLimitMib": 2048},
            "collector": {"resources": {"limits": {"memory": container_limit}}},
        }
    )
    processor = render_pipeline.render(spec, experiment="e", variant="baseline").config["processors"]["memory_limiter"]
    assert (processor["limit_mib"], processor["spike_limit_mib"]) == (limiter, limiter // 5)
