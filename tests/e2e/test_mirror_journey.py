"""examples/production/: a mirrored experiment through the operator, with objects in the real API server and
real collectors and Prometheus run by the local runtime. The production pipeline's real input is copied to
both shadows; the pipeline itself exports as before, and its config is as before once the experiment ends,
however it ends, and even when the operator is killed along the way."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment]
PRODUCTION = controlplane.REPO / "examples" / "production" / "pipeline.yaml"
MIRRORED = controlplane.REPO / "examples" / "production" / "experiment.yaml"
SOURCE = "process-metrics"
FLAGS = ("--runtime", "local", "--measure-step", "2s")
# the production pipeline's own traffic: 8 hosts of 40 processes, every 5 s, as agents would send it
FEED = {"hosts": 8, "processes": 40, "interval": 5}


def _production() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(PRODUCTION.read_text())
    # its vendor exporter needs a Secret and a vendor: test_operator_local shows one delivering
    del manifest["spec"]["exporters"]
    manifest["spec"]["parameters"]["metricExpiration"] = "8s"  # churned processes leave within the test
    return manifest


def _mirrored(name: str | None = None, duration: str = "150s") -> dict[str, Any]:
    """The example on a short clock: its query's rate window with a warmup that lets it fill."""
    manifest: dict[str, Any] = yaml.safe_load(MIRRORED.read_text())
    spec = manifest["spec"]
    assert spec["baseline"] == {"pipelineRef": SOURCE} and spec["load"]["source"] == "mirror"
    del spec["analysis"]["prometheus"]  # the local runtime's own Prometheus scrapes the collectors
    spec["candidate"]["parameters"]["metricExpiration"] = "8s"
    spec["load"]["mirror"]["fraction"] = 0.5  # of 8 hosts: the shadows get some, not all
    spec.update(duration=duration, warmup="60s", analysisInterval="10s")
    # at a few hundred points a second the collectors' CPU is mostly noise, too wide to show within 10% in
    # two minutes; the guardrail's own calibration is a unit test
    spec["analysis"]["objectives"]["maxCpuIncrease"] = 1.0
    for query in spec["analysis"]["criticalQueries"]:
        query["query"] = query["query"].replace("[5m]", "[30s]")  # six of the feed's batches
    if name:
        manifest["metadata"]["name"] = name
    return manifest


class Feed:
    """The agents sending to the production pipeline: they follow its address, as a Service would let them."""

    def __init__(self, plane: controlplane.ControlPlane, namespace: str) -> None:
        self.plane, self.namespace = plane, namespace
        self.endpoint: str | None = None
        self.sender: subprocess.Popen[bytes] | None = None

    def follow(self) -> bool:
        """(Re)start the sender if the pipeline's address moved; True once it sends to the current one."""
        found = harness.get(self.plane, self.namespace, "ppp", SOURCE) or {}
        endpoint = (found.get("status") or {}).get("endpoints", {}).get("otlpHttp")
        if endpoint and endpoint != self.endpoint:
            self.stop()
            self.endpoint = endpoint
            self.sender = subprocess.Popen(
                [str(Path(sys.executable).parent / "phoenix"), "loadsim", "run", "--target", endpoint,
                 "--profile", "realistic", "--hosts", str(FEED["hosts"]),
                 "--processes-per-host", str(FEED["processes"]), "--interval", f"{FEED['interval']}s",
                 "--duration", "15m"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        return endpoint is not None and endpoint == self.endpoint

    def stop(self) -> None:
        if self.sender is not None:
            self.sender.terminate()
            self.sender.wait(30)  # it drains its queue for up to two intervals first, 10 s here
            self.sender = None


@pytest.fixture
def feed(control_plane: controlplane.ControlPlane, namespace: str) -> Iterator[Feed]:
    following = Feed(control_plane, namespace)
    yield following
    following.stop()


def _query(prometheus: str, query: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=10).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _scalar(prometheus: str, query: str) -> float:
    result = _query(prometheus, query)
    return float(result[0]["value"][1]) if result else 0.0


def _prometheus(operator: harness.Operator) -> str:
    served = re.findall(r"the local runtime's Prometheus serves (\S+)", operator.log())
    assert served, operator.log()
    return served[-1]


def _exported_series(prometheus: str) -> float:
    return _scalar(prometheus, f'count({{phoenix_experiment="{SOURCE}", phoenix_scrape="export"}})')


def _pipeline(plane: controlplane.ControlPlane, namespace: str) -> dict[str, Any]:
    found = harness.get(plane, namespace, "ppp", SOURCE)
    assert found is not None
    return found


def _copies_to(plane: controlplane.ControlPlane, namespace: str) -> tuple[list[str], list[str]]:
    """The experiments the production pipeline's annotations ask a copy for, and those its config carries."""
    found = _pipeline(plane, namespace)
    annotations = found["metadata"].get("annotations") or {}
    asked = sorted(k.split("/", 1)[1] for k in annotations if k.startswith("mirror.phoenix.io/"))
    return asked, (found.get("status") or {}).get("mirrors", [])


def _ready_on(plane: controlplane.ControlPlane, namespace: str, config_hash: str) -> bool:
    found = _pipeline(plane, namespace)
    ready = (harness.condition(found, "Ready") or {}).get("status") == "True"
    return ready and found["status"].get("configHash") == config_hash and not found["status"].get("mirrors")


def _production_running(
    plane: controlplane.ControlPlane, namespace: str, operator: harness.Operator, feed: Feed
) -> dict[str, Any]:
    harness.apply(plane, namespace, _production())
    harness.wait_condition(plane, namespace, "ppp", SOURCE, "Ready", "True", 60, operator.log)
    harness.wait_for("the production pipeline's traffic", feed.follow, 30, operator.log)
    return _pipeline(plane, namespace)


def test_a_mirrored_experiment_judges_real_traffic_and_leaves_the_pipeline_as_it_was(
    control_plane: controlplane.ControlPlane, namespace: str, feed: Feed, tmp_path: Path
) -> None:
    workdir = str(tmp_path / "runtime")
    with harness.running(control_plane, namespace, tmp_path, *FLAGS, "--workdir", workdir) as operator:
        before = _production_running(control_plane, namespace, operator, feed)
        prometheus = _prometheus(operator)
        # its exported series once every host's processes are in, before any experiment
        harness.wait_for("the production series", lambda: _exported_series(prometheus) > 0, 60, operator.log)
        time.sleep(3 * FEED["interval"])
        unmirrored = []
        for _ in range(4):
            unmirrored.append(_exported_series(prometheus))
            time.sleep(FEED["interval"])
        refused_before = _scalar(
            prometheus, f'sum(otelcol_receiver_refused_metric_points{{phoenix_experiment="{SOURCE}"}})'
        )

        manifest = _mirrored()
        name = manifest["metadata"]["name"]
        harness.apply(control_plane, namespace, manifest)
        harness.wait_for(
            "Running", lambda: harness.phase(control_plane, namespace, name) == "Running", 90, operator.log
        )
        assert _copies_to(control_plane, namespace) == ([name], [name])
        assert harness.get(control_plane, namespace, "lsim", f"{name}-load") is None, "a mirrored run sends no load"
        mirrored = []
        while harness.phase(control_plane, namespace, name) in ("Running", "Analyzing"):
            mirrored.append(_exported_series(prometheus))
            time.sleep(FEED["interval"])
            assert len(mirrored) < 80, operator.log()
        status = harness.get(control_plane, namespace, "pexp", name)["status"]  # type: ignore[index]
        assert status["phase"] == "Completed", json.dumps(status, indent=1)
        assert status["loadSource"] == "mirror" and "loadSim" not in status
        print(f"mirrored verdict: {status['verdict']}; results {json.dumps(status['results'])}")
        assert status["verdict"]["decision"] == "Promote", status["verdict"]

        # while it was copied, the production pipeline exported what it did before, and refused nothing more
        change = statistics.median(mirrored) / statistics.median(unmirrored) - 1
        print(f"production series: {statistics.median(unmirrored):g} before, {statistics.median(mirrored):g} "
              f"while mirrored ({change:+.2%}; samples {unmirrored} / {mirrored})")  # fmt: skip
        assert abs(change) <= 0.02
        refused = _scalar(prometheus, f'sum(otelcol_receiver_refused_metric_points{{phoenix_experiment="{SOURCE}"}})')
        assert refused == refused_before == 0
        # the shadows got the same hosts, some of the production pipeline's and not all
        hosts: dict[str, set[str]] = {}
        for experiment, variant in ((SOURCE, "baseline"), (name, "baseline"), (name, "candidate")):
            selector = f'phoenix_experiment="{experiment}", phoenix_variant="{variant}", phoenix_scrape="export"'
            found = _query(
                prometheus, f"count by (host_name) (max_over_time(process_memory_usage_bytes{{{selector}}}[10m]))"
            )
            hosts[f"{experiment}/{variant}"] = {r["metric"]["host_name"] for r in found}
        print(f"hosts: { ({k: len(v) for k, v in hosts.items()}) }")
        assert hosts[f"{name}/baseline"] == hosts[f"{name}/candidate"]
        assert set() < hosts[f"{name}/baseline"] < hosts[f"{SOURCE}/baseline"]

        # the copy is gone: no annotation, and the config it had before runs again
        harness.wait_for(
            "the config without the copy",
            lambda: _ready_on(control_plane, namespace, before["status"]["configHash"]),
            30,
            operator.log,
        )
        assert _copies_to(control_plane, namespace) == ([], [])
        after = _pipeline(control_plane, namespace)
        assert after["spec"] == before["spec"] and after["metadata"]["generation"] == before["metadata"]["generation"]


def test_the_copy_is_removed_after_the_operator_is_killed_in_every_phase_and_when_deleted_while_down(
    control_plane: controlplane.ControlPlane, namespace: str, feed: Feed, tmp_path: Path
) -> None:
    """SIGKILLed while Initializing, Running and Analyzing, the operator resumes and the experiment ends with
    one verdict and no copy left; one deleted while no operator runs loses its copy when the next one starts."""
    flags = (*FLAGS, "--workdir", str(tmp_path / "runtime"))
    manifest = _mirrored(duration="90s")
    name = manifest["metadata"]["name"]
    seen: list[str] = []
    with harness.running(control_plane, namespace, tmp_path, *flags) as operator:
        before = _production_running(control_plane, namespace, operator, feed)
        harness.apply(control_plane, namespace, manifest)
        harness.wait_for("Initializing", lambda: harness.phase(control_plane, namespace, name) == "Initializing", 30)
        seen.append("Initializing")
        operator.kill()
    for phase in ("Running", "Analyzing"):
        with harness.running(control_plane, namespace, tmp_path, *flags) as operator:

            def reached_or_ended(wanted: str = phase) -> str | None:
                feed.follow()  # the restarted local runtime's collectors listen on new ports
                found = harness.phase(control_plane, namespace, name)
                return found if found in (wanted, "Completed", "Failed") else None

            reached = harness.wait_for(phase, reached_or_ended, 240, operator.log)
            assert reached == phase, json.dumps(harness.get(control_plane, namespace, "pexp", name), indent=1)
            if phase == "Running":
                assert _copies_to(control_plane, namespace)[0] == [name]
            seen.append(phase)
            operator.kill()
    with harness.running(control_plane, namespace, tmp_path, *flags) as operator:
        harness.wait_for(
            "a verdict",
            lambda: feed.follow() and harness.phase(control_plane, namespace, name) in ("Completed", "Failed"),
            120,
            operator.log,
        )
        status = harness.get(control_plane, namespace, "pexp", name)["status"]  # type: ignore[index]
        assert status["phase"] == "Completed" and status["verdict"]["decision"], json.dumps(status, indent=1)
        events = json.loads(control_plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
        decisions = [e for e in events if e["involvedObject"]["name"] == name and e["reason"] == status["verdict"]
                     ["decision"]]  # fmt: skip
        assert len(decisions) == 1 and decisions[0].get("count", 1) == 1
        harness.wait_for(
            "the config without the copy",
            lambda: _ready_on(control_plane, namespace, before["status"]["configHash"]),
            60,
            operator.log,
        )
        assert _copies_to(control_plane, namespace) == ([], [])
        print(f"killed while {', '.join(seen)}; ended {status['verdict']['decision']} with no copy left")

        # another, deleted while no operator runs
        second = _mirrored("deleted-while-down")
        harness.apply(control_plane, namespace, second)
        feed.follow()
        harness.wait_for(
            "the second copy",
            lambda: _copies_to(control_plane, namespace)[1] == ["deleted-while-down"],
            90,
            operator.log,
        )
        operator.kill()
    # it waits for the operator's finalizer, so the deletion completes once an operator runs
    control_plane.kubectl("delete", "pexp", "deleted-while-down", "-n", namespace, "--wait=false")
    assert _copies_to(control_plane, namespace)[0] == ["deleted-while-down"], "nothing ran to remove it yet"
    with harness.running(control_plane, namespace, tmp_path, *flags) as operator:
        harness.wait_for(
            "the config without the deleted experiment's copy",
            lambda: _ready_on(control_plane, namespace, before["status"]["configHash"]),
            60,
            operator.log,
        )
        assert _copies_to(control_plane, namespace) == ([], [])
    # the killed operators' collectors were reaped by the next, even one killed while it started them
    assert harness.started_under(str(tmp_path / "runtime")) == []
