"""`phoenix validate`, `phoenix render` and `phoenix crds` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel import yaml
from typer.testing import CliRunner

from phoenix_operator.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "manifest.yaml"
    path.write_text(text)
    return str(path)


def test_validate_accepts_every_example() -> None:
    for example in sorted((REPO / "examples").rglob("*.yaml")):
        code, out, err = _run("validate", "-f", str(example))
        assert code == 0, err
        assert out.strip().endswith("valid")


def test_render_experiment_prints_both_variants() -> None:
    code, out, _ = _run("render", "-f", str(REPO / "examples/quickstart/experiment.yaml"))
    assert code == 0
    documents = list(yaml.YAML(typ="safe", pure=True).load_all(out))
    variants = [d["exporters"]["prometheus"]["const_labels"]["phoenix_variant"] for d in documents]
    assert variants == ["baseline", "candidate"]


def test_render_pipeline_prints_one_config() -> None:
    code, out, _ = _run("render", "-f", str(REPO / "examples/pipeline.yaml"))
    assert code == 0
    config = yaml.YAML(typ="safe", pure=True).load(out)
    assert "otlp_http/vendor" in config["exporters"]


BAD = {
    "missing field": ("spec:\n  hosts: 3\n", "spec.targets: required field is missing"),
    "wrong type": (
        "spec:\n  hosts: many\n  targets: [{endpoint: 'http://a:1'}]\n",
        "spec.hosts: Input should be a valid integer",
    ),
    "negative duration": (
        "spec:\n  duration: -5m\n  targets: [{endpoint: 'http://a:1'}]\n",
        "spec.duration: invalid value '-5m'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["validate", "render"])
def test_bad_input_gives_one_line_per_problem(tmp_path: Path, command: str, case: str) -> None:
    body, expected = BAD[case]
    manifest = "apiVersion: phoenix.io/v1alpha1\nkind: LoadSim\nmetadata: {name: l}\n" + body
    code, out, err = _run(command, "-f", _write(tmp_path, manifest))
    assert code == 1
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(expected) or expected in lines[0]
    assert lines[0].startswith(f"{tmp_path / 'manifest.yaml'}: LoadSim/l: ")


def test_unknown_template_is_one_clear_line(tmp_path: Path) -> None:
    manifest = (
        "apiVersion: phoenix.io/v1alpha1\nkind: PhoenixProcessPipeline\nmetadata: {name: p}\nspec: {template: turbo}\n"
    )
    code, _, err = _run("render", "-f", _write(tmp_path, manifest))
    assert code == 1
    assert err.strip() == (
        f"{tmp_path / 'manifest.yaml'}: PhoenixProcessPipeline/p: spec.template: "
        "unknown template 'turbo' (expected 'baseline', 'candidate', 'adaptive')"
    )


def test_a_critical_query_that_is_not_promql_is_named(tmp_path: Path) -> None:
    manifest = """apiVersion: phoenix.io/v1alpha1
kind: PhoenixExperiment
metadata: {name: e}
spec:
  baseline: {template: baseline}
  candidate: {template: candidate}
  load: {loadSim: {profile: realistic}}
  analysis:
    criticalQueries:
    - {name: cpu-total, query: "sum(rate(process_cpu_time_seconds_total[1m])"}
"""
    code, _, err = _run("validate", "-f", _write(tmp_path, manifest))
    assert code == 1
    assert err.strip() == (
        f"{tmp_path / 'manifest.yaml'}: PhoenixExperiment/e: spec.analysis.criticalQueries[0]: "
        "critical query cpu-total is not PromQL: unclosed left parenthesis"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "no such file"), ("a: [", "invalid YAML (line"), ("", "no YAML documents found")],
)
def test_unreadable_files(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "manifest.yaml"
    if content is not None:
        path.write_text(content)
    code, _, err = _run("validate", "-f", str(path))
    assert code == 1
    assert expected in err
    assert "Traceback" not in err


def test_crds_check_fails_on_stale_files(tmp_path: Path) -> None:
    code, out, _ = _run("crds", "generate", "--dir", str(tmp_path))
    assert code == 0 and out.count("wrote") == 4  # three CRDs and their kustomization
    assert _run("crds", "generate", "--dir", str(tmp_path), "--check")[0] == 0
    stale = next(tmp_path.glob("*experiments.yaml"))
    stale.write_text(stale.read_text().replace("Pending", "Waiting"))
    code, _, err = _run("crds", "generate", "--dir", str(tmp_path), "--check")
    assert code == 1
    assert "out of date" in err


def test_help_teaches() -> None:
    code, out, _ = _run("--help")
    assert code == 0
    for command in ("validate", "render", "crds"):
        assert command in out


UNREACHABLE_ADDRESS = """apiVersion: phoenix.io/v1alpha1
kind: PhoenixProcessPipeline
metadata: {name: vendor-typo}
spec:
  template: baseline
  exporters:
    - {name: vendor, type: otlp, endpoint: "http://[::1"}
"""


def test_validate_reports_what_the_collector_itself_rejects(tmp_path: Path) -> None:
    """The models accept this endpoint; the real collector does not, and its words reach the user."""
    code, _, err = _run("validate", "-f", _write(tmp_path, UNREACHABLE_ADDRESS))
    assert code == 1
    assert err.strip() == (
        f"{tmp_path / 'manifest.yaml'}: PhoenixProcessPipeline/vendor-typo: rejected by the collector: "
        "exporters::otlp_grpc/vendor::clientconfig: address [::1: missing ']' in address"
    )


def test_validate_says_when_no_collector_judged_the_configs(tmp_path: Path) -> None:
    result = runner.invoke(
        app.app,
        ["validate", "-f", _write(tmp_path, UNREACHABLE_ADDRESS)],
        env={"PHOENIX_OTELCOL": str(tmp_path / "none")},
    )
    assert result.exit_code == 0
    assert "no collector binary (PHOENIX_OTELCOL)" in result.stderr
    assert result.stdout.strip().endswith("PhoenixProcessPipeline/vendor-typo: valid")


def test_validate_reads_a_directory_and_skips_other_kinds_with_a_note(tmp_path: Path) -> None:
    nested = tmp_path / "deploy" / "pipelines"
    nested.mkdir(parents=True)
    (nested / "pipeline.yaml").write_text((REPO / "examples" / "production" / "pipeline.yaml").read_text())
    access = (REPO / "docs" / "prometheus-token-access.yaml").read_text()  # a Role and a RoleBinding
    other_kind = "apiVersion: v1\nkind: Secret\nmetadata: {name: token}\ntype: Opaque\n"
    experiment = (REPO / "examples" / "quickstart" / "experiment.yaml").read_text()
    (tmp_path / "deploy" / "all.yaml").write_text(f"{access}\n---\n{other_kind}---\n{experiment}")
    (tmp_path / "deploy" / "README.md").write_text("not a manifest")
    analyze_input = (REPO / "examples" / "analyze" / "quickstart-input.json").read_text()
    (tmp_path / "deploy" / "input.json").write_text(analyze_input)  # not a manifest either
    code, out, err = _run("validate", "-f", str(tmp_path / "deploy"))
    assert code == 0, err
    assert out.splitlines() == [
        f"{tmp_path / 'deploy' / 'all.yaml'}: PhoenixExperiment/quickstart: valid",
        f"{nested / 'pipeline.yaml'}: PhoenixProcessPipeline/process-metrics: valid",
    ]
    skipped = [line for line in err.splitlines() if line.endswith("not a Phoenix kind, skipped")]
    assert [line.split(": ")[2] for line in skipped] == [
        "Role/phoenix-operator-prometheus-token",
        "RoleBinding/phoenix-operator-prometheus-token",
        "Secret/token",
    ]
    assert f"note: {tmp_path / 'deploy' / 'input.json'}: document/?: not a Kubernetes manifest" in err


def test_a_directory_without_manifests_is_one_line(tmp_path: Path) -> None:
    code, _, err = _run("validate", "-f", str(tmp_path))
    assert code == 1
    assert err.strip() == f"error: {tmp_path}: no .yaml, .yml, .json files in this directory"


def test_render_says_what_stands_for_a_referenced_baseline(tmp_path: Path) -> None:
    code, out, err = _run("render", "-f", str(REPO / "examples" / "experiment.yaml"))
    assert code == 0
    assert len(list(yaml.YAML(typ="safe", pure=True).load_all(out))) == 1
    assert "the baseline is pipelineRef process-metrics; rendering only the candidate" in err
    both = tmp_path / "both.yaml"
    both.write_text(
        (REPO / "examples" / "production" / "pipeline.yaml").read_text()
        + "---\n"
        + (REPO / "examples" / "experiment.yaml").read_text()
    )
    code, out, err = _run("render", "-f", str(both))
    assert code == 0
    assert "rendering its shadow copy of pipeline process-metrics (from this input)" in err
