"""`kubectl phoenix` against the real API server, through the user's kubeconfig.

No operator runs here: each test writes the experiment's status the way the
operator would, then checks what the plugin shows and changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from phoenix_operator.cli import app
from tests.harness import controlplane
from tests.harness import operator as harness

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()
INTERVAL = {"estimate": 0.83, "ciLow": 0.828, "ciHigh": 0.832}
COMPLETED = {
    "phase": "Completed",
    "baselinePipeline": "process-metrics",
    "candidatePipeline": "lean-process-metrics-candidate",
    "results": {
        "baseline": {"activeSeries": 7025, "datapointsPerMinute": 82241},
        "candidate": {"activeSeries": 1192, "datapointsPerMinute": 14206},
        "seriesReduction": INTERVAL,
        "datapointReduction": {"estimate": 0.827, "ciLow": 0.82, "ciHigh": 0.835},
        "monthlySavingsUsd": {"estimate": 325.96, "ciLow": 307.78, "ciHigh": 344.14},
        "fidelity": {"checked": 1, "passed": 1},
        "samplesUsed": 14,
    },
    "verdict": {
        "decision": "Promote",
        "reasons": ["series reduction 83.0% [82.8%, 83.2%] clears the objective 60%"],
        "decidedAt": "2026-01-01T00:00:00Z",
    },
}


@pytest.fixture
def kubeconfig(control_plane: controlplane.ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    return control_plane.kubeconfig


def _plugin(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    return loaded


def _experiment(plane: controlplane.ControlPlane, namespace: str, status: dict[str, Any]) -> str:
    manifest = _example("experiment.yaml")
    harness.apply(plane, namespace, manifest)
    _write_status(plane, namespace, manifest["metadata"]["name"], status)
    return str(manifest["metadata"]["name"])


def _write_status(plane: controlplane.ControlPlane, namespace: str, name: str, status: dict[str, Any]) -> None:
    patch = json.dumps({"status": status})
    plane.kubectl("patch", "-n", namespace, "pexp", name, "--subresource=status", "--type=merge", "-p", patch)


@pytest.mark.usefixtures("kubeconfig")
def test_list_and_status_show_the_verdict(control_plane: controlplane.ControlPlane, namespace: str) -> None:
    name = _experiment(control_plane, namespace, COMPLETED)
    code, out, _ = _plugin("list", "-n", namespace)
    assert code == 0
    header, row = out.strip().splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "DECISION", "REDUCTION", "SAVINGS/MO", "AGE"]
    assert row.split()[:5] == [name, "Completed", "Promote", "83.0%", "$326"]

    code, out, _ = _plugin("list", "-A", "-o", "wide")
    assert code == 0
    assert any(line.split()[:2] == [namespace, name] and "candidate" in line for line in out.splitlines())

    code, out, _ = _plugin("list", "-n", namespace, "-o", "json")
    assert code == 0
    assert [item["metadata"]["name"] for item in json.loads(out)["items"]] == [name]

    code, out, _ = _plugin("status", name, "-n", namespace)
    assert code == 0
    for expected in ("Promote", "83.0% [82.8%, 83.2%]", "$325.96 [$307.78, $344.14]", "7,025 series", "1/1"):
        assert expected in out, expected
    code, out, _ = _plugin("status", name, "-n", namespace, "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(out)["status"]["verdict"]["decision"] == "Promote"


@pytest.mark.usefixtures("kubeconfig")
def test_promote_prints_the_pipeline_for_git_then_applies_it(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path
) -> None:
    production = {
        "apiVersion": "phoenix.io/v1alpha1",
        "kind": "PhoenixProcessPipeline",
        "metadata": {"name": "process-metrics", "labels": {"team": "sre"}},
        # adaptive's seriesBudget, which the candidate lacks, must not survive the promotion
        "spec": {"template": "adaptive", "parameters": {"seriesBudget": 5000}, "collector": {"replicas": 3}},
    }
    harness.apply(control_plane, namespace, production)
    stored = harness.get(control_plane, namespace, "ppp", "process-metrics")["spec"]  # type: ignore[index]
    name = _experiment(control_plane, namespace, COMPLETED)

    code, out, _ = _plugin("promote", name, "-n", namespace, "--dry-run", "-o", "yaml")
    assert code == 0
    manifest = yaml.safe_load(out)
    assert manifest["metadata"] == {"name": "process-metrics", "namespace": namespace, "labels": {"team": "sre"}}
    assert manifest["spec"]["template"] == "candidate"
    assert manifest["spec"]["parameters"]["keepProcesses"]["executableNames"] == ["postgres"]
    assert manifest["spec"]["collector"]["replicas"] == 3  # the rest of the target is kept
    # a dry run changes nothing, and what it prints is a valid pipeline
    assert harness.get(control_plane, namespace, "ppp", "process-metrics")["spec"]["template"] == "adaptive"  # type: ignore[index]
    (tmp_path / "promoted.yaml").write_text(out)
    assert _plugin("validate", "-f", str(tmp_path / "promoted.yaml"))[0] == 0

    code, out, _ = _plugin("promote", name, "-n", namespace)
    assert code == 0, out
    promoted = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert promoted is not None
    assert promoted["spec"] == manifest["spec"], "the live pipeline differs from what --dry-run printed"

    # the experiment remembers what the promotion changed, and rollback puts it back
    record = harness.get(control_plane, namespace, "pexp", name)["status"]["promotion"]  # type: ignore[index]
    assert record["target"] == "process-metrics" and json.loads(record["previousSpec"]) == stored
    code, out, _ = _plugin("rollback", name, "-n", namespace)
    assert code == 0, out
    assert "process-metrics runs its spec from before the promotion" in out
    restored = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert restored is not None and restored["spec"] == stored
    assert restored["metadata"]["labels"] == {"team": "sre"}
    code, _, err = _plugin("rollback", name, "-n", namespace)
    assert code == 1 and err.strip() == f"error: {name}: the promotion to process-metrics was already rolled back"


@pytest.mark.usefixtures("kubeconfig")
def test_rollback_deletes_a_target_the_promotion_created(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    name = _experiment(control_plane, namespace, COMPLETED)
    code, _, err = _plugin("rollback", name, "-n", namespace)
    assert code == 1 and err.strip() == f"error: {name}: nothing was promoted"
    assert _plugin("promote", name, "-n", namespace)[0] == 0  # its baseline's pipelineRef does not exist yet
    created = harness.get(control_plane, namespace, "ppp", "process-metrics")
    assert created is not None and created["spec"]["template"] == "candidate"
    code, out, _ = _plugin("rollback", name, "-n", namespace)
    assert code == 0, out
    assert harness.get(control_plane, namespace, "ppp", "process-metrics") is None


@pytest.mark.usefixtures("kubeconfig")
def test_promote_refuses_without_a_promote_verdict(control_plane: controlplane.ControlPlane, namespace: str) -> None:
    rejected = COMPLETED | {"verdict": COMPLETED["verdict"] | {"decision": "Reject"}}
    name = _experiment(control_plane, namespace, rejected)
    code, out, err = _plugin("promote", name, "-n", namespace, "--dry-run")
    assert code == 1
    assert out == ""
    assert err.strip() == f"error: {name}: the verdict is Reject, not Promote (use --force to promote anyway)"


@pytest.mark.usefixtures("kubeconfig")
def test_abort_stops_a_running_experiment_once(control_plane: controlplane.ControlPlane, namespace: str) -> None:
    name = _experiment(control_plane, namespace, {"phase": "Running"})
    code, out, _ = _plugin("abort", name, "-n", namespace)
    assert code == 0
    assert "aborting" in out
    assert harness.get(control_plane, namespace, "pexp", name)["spec"]["abort"] is True  # type: ignore[index]
    _write_status(control_plane, namespace, name, {"phase": "Aborted"})
    code, _, err = _plugin("abort", name, "-n", namespace)
    assert code == 1
    assert err.strip() == f"error: {name} has already ended (Aborted)"


def _kubectl_phoenix(plane: controlplane.ControlPlane, *args: str) -> subprocess.Popen[str]:
    """`kubectl phoenix ...` found by kubectl's plugin discovery, as a user runs it."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.Popen(
        ["kubectl", "phoenix", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PATH": path, "KUBECONFIG": str(plane.kubeconfig)},
    )


def _phase_of(line: str) -> str:
    return line.split()[1].rstrip(",") if line[:2].isdigit() else ""


def test_watch_follows_the_experiment_until_it_completes(
    control_plane: controlplane.ControlPlane, namespace: str
) -> None:
    running = {"phase": "Running", "results": COMPLETED["results"] | {"samplesUsed": 3}}
    name = _experiment(control_plane, namespace, running)
    watching = _kubectl_phoenix(control_plane, "watch", name, "-n", namespace, "--timeout", "60s")
    assert watching.stdout is not None
    # each change is written once the watch has shown the one before, so none can be missed
    next_status = {"Running": {"phase": "Analyzing"}, "Analyzing": COMPLETED}
    lines = []
    for line in watching.stdout:
        lines.append(line)
        if _phase_of(line) in next_status:
            _write_status(control_plane, namespace, name, next_status.pop(_phase_of(line)))
    watching.wait(timeout=30)
    out = "".join(lines)
    assert watching.returncode == 0, out + watching.stderr.read()  # type: ignore[union-attr]
    assert [_phase_of(line) for line in lines if _phase_of(line)] == ["Running", "Analyzing", "Completed"]
    assert "3 samples" in out
    assert "Promote (decided 2026-01-01 00:00:00 UTC)" in out  # the summary at the end


@pytest.mark.parametrize("ending", ["Failed", "Aborted", "timeout"])
def test_watch_exits_1_unless_the_experiment_completes(
    control_plane: controlplane.ControlPlane, namespace: str, ending: str
) -> None:
    name = _experiment(control_plane, namespace, {"phase": "Running"})
    timeout = "3s" if ending == "timeout" else "60s"
    watching = _kubectl_phoenix(control_plane, "watch", name, "-n", namespace, "--timeout", timeout)
    assert watching.stdout is not None
    first = watching.stdout.readline()
    assert _phase_of(first) == "Running", first
    if ending != "timeout":
        _write_status(control_plane, namespace, name, {"phase": ending})
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 1, out + err
    if ending == "timeout":
        assert err.strip() == f"error: {name} did not end within 3s"
    else:
        assert _phase_of(out.splitlines()[0]) == ending


@pytest.mark.usefixtures("kubeconfig")
def test_report_from_status(control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path) -> None:
    name = _experiment(control_plane, namespace, COMPLETED)
    page = tmp_path / "report.html"
    code, out, _ = _plugin("report", name, "-n", namespace, "--html", str(page))
    assert code == 0
    assert "83.0% [82.8%, 83.2%]" in out
    text = page.read_text()
    assert f"Promote: {name}" in text
    assert "clears the objective 60%" in text


@pytest.mark.usefixtures("kubeconfig")
def test_report_without_html_prints_the_summary_and_writes_nothing(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _experiment(control_plane, namespace, COMPLETED)
    monkeypatch.chdir(tmp_path)
    code, out, err = _plugin("report", name, "-n", namespace)
    assert (code, err) == (0, "")
    for expected in ("Promote", "83.0% [82.8%, 83.2%]", "$325.96 [$307.78, $344.14]", "7,025 series"):
        assert expected in out, expected
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("kubeconfig")
def test_errors_are_one_line(control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path) -> None:
    code, _, err = _plugin("status", "missing", "-n", namespace)
    assert (code, err.strip()) == (1, f"error: get phoenixexperiment missing not found in namespace {namespace}")
    code, _, err = _plugin("list", "--context", "elsewhere")
    assert (code, err.strip()) == (1, "error: context 'elsewhere' is not in the kubeconfig")


def test_forbidden_and_no_cluster_are_one_line(
    control_plane: controlplane.ControlPlane, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    control_plane.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = control_plane.kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    monkeypatch.setenv("KUBECONFIG", str(control_plane.token_kubeconfig(tmp_path / "nobody.kubeconfig", token)))
    code, _, err = _plugin("list", "-n", namespace)
    assert code == 1
    assert err.startswith("error: forbidden: cannot list phoenixexperiments: ")
    assert len(err.strip().splitlines()) == 1

    unreachable = (tmp_path / "nobody.kubeconfig").read_text().replace(control_plane.url, "https://127.0.0.1:9")
    (tmp_path / "gone.kubeconfig").write_text(unreachable)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gone.kubeconfig"))
    code, _, err = _plugin("list", "-n", namespace)
    assert code == 1
    assert err.strip().startswith("error: no cluster: cannot reach https://127.0.0.1:9")


def test_recommend_learns_from_the_critical_queries_of_the_clusters_experiments(
    control_plane: controlplane.ControlPlane, kubeconfig: Path, namespace: str
) -> None:
    harness.apply(control_plane, namespace, _example("quickstart/experiment.yaml"))
    code, out, err = _plugin("recommend", "--experiments", "-n", namespace)
    assert code == 0, err
    used = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(used) == {"process_cpu_time_seconds_total", "process_memory_usage_bytes"}
    assert "host_name, process_executable_name" in used["process_cpu_time_seconds_total"]
    assert (
        f"experiment {namespace}/quickstart: query cpu-by-host-and-executable" in used["process_cpu_time_seconds_total"]
    )
    assert "without Prometheus" in err


def test_recommend_without_queries_or_with_an_unreachable_prometheus_says_so_in_one_line(
    tmp_path: Path, kubeconfig: Path, namespace: str
) -> None:
    code, _, err = _plugin("recommend", "--experiments", "-n", namespace)  # a namespace without experiments
    assert code == 1
    assert (
        err.strip()
        == "error: no queries to learn from: give --dashboards, --rules, --query-log, --experiments or --prometheus"
    )
    dashboards = EXAMPLES.parent / "tests" / "recommend" / "dashboards"
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    code, out, err = _plugin("recommend", "--dashboards", str(dashboards), "--prometheus", closed)
    assert code == 0, err  # the dashboards are still analysed
    assert f"error: {closed}: Prometheus at {closed} is unreachable" in err
    assert "process_disk_io_bytes_total" in out
    code, _, err = _plugin("recommend", "--dashboards", str(dashboards), "--prometheus", closed, "-o", "yaml")
    assert code == 1 and err.count("is unreachable") == 1
    assert err.splitlines()[-1].startswith(f"error: {closed}: Prometheus at {closed} is unreachable")


def test_status_and_report_set_the_estimate_beside_the_measured_series(
    control_plane: controlplane.ControlPlane, kubeconfig: Path, namespace: str
) -> None:
    manifest = _example("quickstart/experiment.yaml")
    harness.apply(control_plane, namespace, manifest)
    _write_status(control_plane, namespace, "quickstart", COMPLETED)
    code, out, _ = _plugin("estimate", "-f", str(EXAMPLES / "quickstart" / "experiment.yaml"), "-o", "json")
    assert code == 0
    predicted = json.loads(out)["candidate"]["activeSeries"]
    measured = COMPLETED["results"]["candidate"]["activeSeries"]  # type: ignore[index]
    row = f"{predicted:,} (measured {measured:,}: {predicted / measured - 1:+.1%})"
    for command in ("status", "report"):
        code, out, err = _plugin(command, "quickstart", "-n", namespace)
        assert code == 0, err
        assert "candidate series estimated" in out and row in out, out


def _finished(plane: controlplane.ControlPlane, namespace: str, name: str, status: dict[str, Any]) -> None:
    manifest = _example("experiment.yaml")
    manifest["metadata"]["name"] = name
    harness.apply(plane, namespace, manifest)
    _write_status(plane, namespace, name, status)


def test_history_lists_verdicts_in_time_and_what_the_promotions_in_effect_save(
    control_plane: controlplane.ControlPlane, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    """A Reject, a watched Promote, one promoted and rolled back, and an unwatched Promote."""

    def decided(day: int, decision: str, **extra: Any) -> dict[str, Any]:
        verdict = {**COMPLETED["verdict"], "decision": decision, "decidedAt": f"2026-01-0{day}T00:00:00Z"}
        return {**COMPLETED, "verdict": verdict, **extra}

    def promoted(day: int, **record: Any) -> dict[str, Any]:
        return {"target": "process-metrics", "previousSpec": "{}", "promotedAt": f"2026-01-0{day}T06:00:00Z", **record}

    # listed out of order, so that the order shown is the decisions'
    _finished(control_plane, namespace, "watched", decided(2, "Promote", promotion=promoted(2),
              drift={"keptRatio": 0.2, "checkedAt": "2026-01-05T00:00:00Z"}))  # fmt: skip
    _finished(control_plane, namespace, "rejected", decided(1, "Reject"))
    _finished(control_plane, namespace, "unwatched", decided(4, "Promote", promotion=promoted(4)))
    _finished(control_plane, namespace, "undone", decided(3, "Promote",
              promotion=promoted(3, rolledBackAt="2026-01-03T12:00:00Z")))  # fmt: skip
    page = tmp_path / "history.html"
    code, out, err = _plugin("history", "-n", namespace, "-o", "json", "--html", str(page))
    assert code == 0, err
    shown = json.loads(out)
    assert [e["name"] for e in shown["experiments"]] == ["rejected", "watched", "undone", "unwatched"]
    by_name = {e["name"]: e for e in shown["experiments"]}
    # the watched promotion removes 80% of its input now, against 82.7% measured: it saves that share of the verdict's
    assert by_name["watched"]["realizedMonthlySavingsUsd"] == pytest.approx(325.96 * 0.8 / 0.827)
    assert by_name["unwatched"]["realizedMonthlySavingsUsd"] == pytest.approx(325.96)
    assert by_name["undone"]["realizedMonthlySavingsUsd"] is None and by_name["undone"]["rolledBackAt"]
    assert by_name["rejected"]["realizedMonthlySavingsUsd"] is None and by_name["rejected"]["target"] is None
    assert shown["promotedMonthlySavingsUsd"] == pytest.approx(325.96 * 0.8 / 0.827 + 325.96)
    code, table, err = _plugin("history", "-n", namespace)
    assert code == 0, err
    assert [line.split()[3] for line in table.splitlines()[1:5]] == ["rejected", "watched", "undone", "unwatched"]
    assert (
        "rolled back" in table and f"2 promotions in effect save ${325.96 * 0.8 / 0.827 + 325.96:,.2f} a month" in table
    )
    html = page.read_text()
    assert "<svg" in html and "polyline" in html and "promoted, in effect" in html
    assert "watched: Promote" in html and "rolled back 2026-01-03 12:00" in html
    code, _, err = _plugin("history", "-n", "nothing-here")
    assert code == 0 and "No experiment has a verdict in namespace nothing-here." in err
