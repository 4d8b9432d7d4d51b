"""Benchmark: the operator under 1,000 new pipelines, against a Go controller-runtime peer.

Each run of either operator gets a test bed of its own, started for it and
stopped after it: real kube-apiserver, etcd, controllers and kwok's nodes,
the same binaries and flags each time. So no run works beside, or on top
of, the thousands of objects of the runs before it. The bench creates N
PhoenixProcessPipelines as fast as the API accepts them and watches each
for its first status and for the status that says its children are
applied. Both write the same statuses with the same requests: a first one
that acknowledges the pipeline, then, once they have server-side applied
its ConfigMap, Deployment, PodDisruptionBudget and Service, the one that
says so. Phoenix renders each pipeline's config; the peer
(bench/reference-go, built by `make tools`) applies the same objects,
rendered by Phoenix beforehand, so the rendering is Phoenix's work alone.

They run twice: with equal rate limits (Phoenix's default --deploy-rate of 5
pipelines a second, of six requests each after the acknowledgement, against
one client limit of 35 requests a second, burst 70, for all of the peer's
seven requests a pipeline) and with the limits off. Reported for each:
p50/p99 from create to first status and to children applied, API requests
per pipeline (counted by the API server's audit log, by user agent),
CPU-seconds and peak RSS, and the ratios.

On two cores the test bed keeps both cores busy throughout a burst, so one
run's p99 says little. With --rounds N each operator runs N times, the
order alternating from round to round (Phoenix first, then the peer first,
...), so a machine that drifts weighs on both alike; each round's ratio is
printed, and the table pools every round's pipelines, so its p99 is over
N x 1,000 of them.

    .venv/bin/python -m bench.operator_scale [--count 1000] [--limits both|on|off] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch
from tests.harness import controlplane
from tests.harness import operator as harness

from phoenix_operator import binaries
from phoenix_operator.models import kinds
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.runtime import process

GROUP, VERSION, PLURAL = "phoenix.io", "v1alpha1", "phoenixprocesspipelines"
SPEC = {"template": "baseline"}
BENCH_AGENT = "phoenix-bench"
# requests the audit log counts for neither operator: the test bed's own components, kubectl and the bench
NOT_AN_OPERATOR = ("kube-controller-manager", "kube-scheduler", "kwok", "kubectl", "kube-apiserver", BENCH_AGENT)
# Phoenix's default --deploy-rate, pipelines a second after a burst of twice as many; the peer's client
# limit gives the same pipelines a second, at seven requests a pipeline
DEPLOY_RATE = 5.0
PEER_QPS = 35
# a new custom resource's storage answers 429 for a moment after its CRD is established
SERVED_TIMEOUT_SECONDS = 60.0


@dataclass
class Result:
    name: str
    first_status_seconds: list[float]  # from create, one per pipeline
    applied_seconds: list[float]  # from create to children applied
    requests_per_pipeline: float
    cpu_seconds: float  # per run of `count` pipelines
    peak_rss_mb: float

    @property
    def first_status(self) -> tuple[float, float]:
        return _percentiles(self.first_status_seconds)

    @property
    def applied(self) -> tuple[float, float]:
        return _percentiles(self.applied_seconds)


def _pooled(runs: list[Result]) -> Result:
    """Every run's pipelines together; requests and CPU per run averaged, the highest peak RSS."""
    return Result(
        runs[0].name,
        [seconds for run in runs for seconds in run.first_status_seconds],
        [seconds for run in runs for seconds in run.applied_seconds],
        statistics.mean(run.requests_per_pipeline for run in runs),
        statistics.mean(run.cpu_seconds for run in runs),
        max(run.peak_rss_mb for run in runs),
    )


def _applied(status: dict[str, Any]) -> bool:
    conditions = status.get("conditions")
    ready = [c for c in conditions if c.get("type") == "Ready"] if isinstance(conditions, list) else []
    return bool(ready) and ready[0].get("reason") not in ("Deploying", None)


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """Its CPU time and its ended children's (Phoenix's collector config checks run as child processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def operator_requests(audit_log: Path, since: float, until: float) -> Counter[tuple[str, str, str]]:
    """Requests in [since, until] by user agent, verb and resource, without the test bed's and the bench's."""
    requests: Counter[tuple[str, str, str]] = Counter()
    for event in controlplane.audited_requests(audit_log, since, until):
        agent = event.get("userAgent", "")
        if not agent.startswith(NOT_AN_OPERATOR):
            target = event.get("objectRef") or {}
            resource = "/".join(filter(None, (target.get("resource"), target.get("subresource"))))
            requests[agent.split(" ")[0], event["verb"], resource] += 1
    return requests


def _measure(api: k8s.CustomObjectsApi, namespace: str, count: int, label: str) -> tuple[list[float], list[float]]:
    """Seconds from create to first status, and to children applied, of each of `count` new pipelines."""
    created: dict[str, float] = {}
    first_status: dict[str, float] = {}
    applied: dict[str, float] = {}
    done = threading.Event()

    def finished() -> bool:
        return len(first_status) == count and len(applied) == count

    def observe() -> None:
        deadline = time.monotonic() + 900
        # the API server ends watches now and then; a new one lists what is there
        while not finished() and time.monotonic() < deadline:
            stream = watch.Watch()
            for event in stream.stream(
                api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, timeout_seconds=300
            ):
                obj = event["object"]
                name = obj["metadata"]["name"]
                status = obj.get("status")
                if status and name not in first_status:
                    first_status[name] = time.monotonic()
                if status and name not in applied and _applied(status):
                    applied[name] = time.monotonic()
                if finished():
                    stream.stop()
        done.set()

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    time.sleep(1.0)  # let the watch start before the first create
    for i in range(count):
        name = f"p{i:05d}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PhoenixProcessPipeline", "metadata": {"name": name},
                "spec": SPEC}  # fmt: skip
        created[name] = time.monotonic()
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        if (i + 1) % 200 == 0:
            print(f"  {label}: created {i + 1}/{count}, {len(applied)} applied", file=sys.stderr)
    done.wait(timeout=960)
    if not finished():
        raise SystemExit(f"{label}: {len(first_status)}/{count} got a status, {len(applied)} applied in 15 minutes")
    return [first_status[n] - created[n] for n in created], [applied[n] - created[n] for n in created]


def _served(api: k8s.CustomObjectsApi, namespace: str) -> None:
    """Wait until the pipelines' storage answers, so neither operator starts against a test bed still warming up."""
    deadline = time.monotonic() + SERVED_TIMEOUT_SECONDS
    while True:
        try:
            api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
            return
        except k8s.ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _rendered(namespace: str, count: int, path: Path) -> None:
    """Phoenix's children of each pipeline the bench creates, for the peer to apply, without owner references."""
    manifests = {}
    for i in range(count):
        pipeline = kinds.PhoenixProcessPipeline.model_validate(
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "PhoenixProcessPipeline",
             "metadata": {"name": f"p{i:05d}", "namespace": namespace, "uid": "unknown"}, "spec": SPEC}
        )  # fmt: skip
        children = reconcile_pipeline.manifests(pipeline, reconcile_pipeline.render(pipeline))
        for child in children:
            child["metadata"].pop("ownerReferences", None)
        manifests[pipeline.metadata.name] = children
    path.write_text(json.dumps(manifests), encoding="utf-8")


def _run(workdir: Path, count: int, label: str, limits: bool) -> Result:
    audit_log = workdir / "audit.log"
    with controlplane.running(workdir / "plane", audit_log=audit_log) as plane:
        plane.install_crds()
        return _measured(plane, workdir, audit_log, count, label, limits)


def _measured(
    plane: controlplane.ControlPlane, workdir: Path, audit_log: Path, count: int, label: str, limits: bool
) -> Result:
    namespace = harness.namespace(plane)
    client = k8s_config.new_client_from_config(config_file=str(plane.kubeconfig))
    client.user_agent = BENCH_AGENT
    api = k8s.CustomObjectsApi(client)
    _served(api, namespace)
    since = time.time()
    if label == "phoenix":
        rate = str(DEPLOY_RATE) if limits else "100000"
        with harness.running(plane, namespace, workdir, "--prometheus-url", "http://127.0.0.1:9",
                             "--deploy-rate", rate) as running:  # fmt: skip
            pid = running.process.pid
            assert pid is not None
            first, applied = _measure(api, namespace, count, label)
            cpu, rss = cpu_seconds(pid), peak_rss_mb(pid)
    else:
        manifests = workdir / f"{namespace}.json"
        _rendered(namespace, count, manifests)
        qps = ["--qps", str(PEER_QPS), "--burst", str(2 * PEER_QPS)] if limits else ["--qps", "-1"]
        argv = [str(binaries.require(binaries.REFERENCE_GO)), "--namespace", namespace, "--manifests", str(manifests)]
        managed = process.ManagedProcess(
            label, [*argv, *qps], workdir / f"{label}.log", env={**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        )
        managed.start()
        try:
            time.sleep(2.0)  # its informer's first list
            assert managed.pid is not None
            first, applied = _measure(api, namespace, count, label)
            cpu, rss = cpu_seconds(managed.pid), peak_rss_mb(managed.pid)
        finally:
            managed.stop()
    requests = operator_requests(audit_log, since, time.time())
    print(f"  {label}: requests per pipeline by user agent, verb and resource:", file=sys.stderr)
    for (agent, verb, resource), seen in requests.most_common():
        print(f"    {seen / count:6.2f}  {agent} {verb} {resource}", file=sys.stderr)
    return Result(label, first, applied, sum(requests.values()) / count, cpu, rss)


def _report(title: str, ours_by_round: list[Result], peer_by_round: list[Result]) -> None:
    print(f"\n{title}")
    if len(ours_by_round) > 1:
        for number, (ours, peer) in enumerate(zip(ours_by_round, peer_by_round, strict=True), 1):
            print(f"round {number}: applied p99 {ours.name} {ours.applied[1]:.2f} s, {peer.name}"
                  f" {peer.applied[1]:.2f} s, ratio {ours.applied[1] / peer.applied[1]:.2f}; CPU"
                  f" {ours.cpu_seconds:.1f} s against {peer.cpu_seconds:.1f} s")  # fmt: skip
        print(f"all {len(ours_by_round)} rounds' pipelines together:")
    ours, peer = _pooled(ours_by_round), _pooled(peer_by_round)
    print(f"{'operator':<14} {'status p50/p99 s':>17} {'applied p50/p99 s':>18} {'requests/pipeline':>18}"
          f" {'CPU s':>7} {'peak RSS MB':>12}")  # fmt: skip
    for r in (ours, peer):
        status, applied = f"{r.first_status[0]:.2f}/{r.first_status[1]:.2f}", f"{r.applied[0]:.2f}/{r.applied[1]:.2f}"
        print(f"{r.name:<14} {status:>17} {applied:>18} {r.requests_per_pipeline:>18.1f} {r.cpu_seconds:>7.1f}"
              f" {r.peak_rss_mb:>12.0f}")  # fmt: skip
    print(
        f"ratio phoenix/{peer.name}: applied p99 {ours.applied[1] / peer.applied[1]:.2f} (target <= 1.5),"
        f" first status p99 {ours.first_status[1] / peer.first_status[1]:.2f},"
        f" requests per pipeline {ours.requests_per_pipeline - peer.requests_per_pipeline:+.1f} (target <= +2),"
        f" CPU {ours.cpu_seconds / peer.cpu_seconds:.2f}, RSS {ours.peak_rss_mb / peer.peak_rss_mb:.2f}"
        f" (target: phoenix <= 250 MB)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument(
        "--limits", choices=("both", "on", "off"), default="both", help="run with equal rate limits, without, or both"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of each operator per limit setting, in alternating order"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    modes = {"both": (True, False), "on": (True,), "off": (False,)}[args.limits]
    results: dict[tuple[str, bool], list[Result]] = {}
    for limits in modes:
        for number in range(args.rounds):
            order = ("phoenix", "reference-go") if number % 2 == 0 else ("reference-go", "phoenix")
            for label in order:
                print(f"{label}: {args.count} pipelines, rate limits {'on' if limits else 'off'},"
                      f" round {number + 1}/{args.rounds}", file=sys.stderr)  # fmt: skip
                with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as tmp:
                    run = _run(Path(tmp), args.count, label, limits)
                results.setdefault((label, limits), []).append(run)
    if True in modes:
        _report(
            f"equal rate limits: phoenix --deploy-rate {DEPLOY_RATE:g}, reference-go --qps {PEER_QPS}",
            results["phoenix", True],
            results["reference-go", True],
        )
    if False in modes:
        _report("rate limits off", results["phoenix", False], results["reference-go", False])
    return 0


if __name__ == "__main__":
    sys.exit(main())
