"""Benchmark: the operator under 1,000 new pipelines, against a Go controller-runtime peer.

Both operators run in turn against the same test bed (real kube-apiserver,
etcd, controllers and kwok's nodes), each in its own namespace, and each
once the controllers and kwok have rolled out the Deployments of the run
before (about three minutes), so neither works beside the other's
aftermath. The bench creates N PhoenixProcessPipelines as fast as the API accepts them and
watches each for its first status and for the status that says its children
are applied. Phoenix renders each pipeline's config and server-side applies
its ConfigMap, Deployment, PodDisruptionBudget and Service; the peer
(bench/reference-go, built by `make tools`) server-side applies the same
objects, rendered by Phoenix beforehand so the rendering is Phoenix's work
alone, and writes a status.

They run twice: with equal rate limits (Phoenix's default --deploy-rate of 5
pipelines a second, of about six requests each, against one client limit of
30 requests a second, burst 60, for all of the peer's requests) and with the
limits off. Reported for
each: p50/p99 from create to first status and to children applied, API
requests per pipeline (counted by the API server's audit log, by user
agent), CPU-seconds and peak RSS, and the ratios.

    .venv/bin/python -m bench.operator_scale [--count 1000] [--limits both|on|off]
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
# limit gives the same requests a second, at about six requests a pipeline
DEPLOY_RATE = 5.0
PEER_QPS = 30
# a run's 1,000 Deployments keep the controllers and kwok busy for a while after the operator is done
SETTLE_TIMEOUT_SECONDS = 600.0


@dataclass
class Result:
    name: str
    first_status: tuple[float, float]  # p50, p99 seconds from create
    applied: tuple[float, float]  # p50, p99 seconds from create to children applied
    requests_per_pipeline: float
    cpu_seconds: float
    peak_rss_mb: float


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


def _settle(apps: k8s.AppsV1Api, namespace: str, label: str) -> None:
    """Wait until the controllers and kwok have rolled out every Deployment of `namespace`, so the next
    operator is measured on a test bed as quiet as the first one was."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_SECONDS:
        deployments = apps.list_namespaced_deployment(namespace).items
        pending = sum(1 for d in deployments if (d.status.ready_replicas or 0) < (d.spec.replicas or 0))
        if pending == 0:
            print(f"  {label}: the test bed settled {time.monotonic() - started:.0f} s after the run", file=sys.stderr)
            return
        time.sleep(2.0)
    raise SystemExit(f"{label}: {pending} Deployments still rolling out after {SETTLE_TIMEOUT_SECONDS:.0f} s")


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


def _run(
    plane: controlplane.ControlPlane, workdir: Path, audit_log: Path, count: int, label: str, limits: bool
) -> Result:
    namespace = harness.namespace(plane)
    client = k8s_config.new_client_from_config(config_file=str(plane.kubeconfig))
    client.user_agent = BENCH_AGENT
    api = k8s.CustomObjectsApi(client)
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
    _settle(k8s.AppsV1Api(client), namespace, label)
    return Result(label, _percentiles(first), _percentiles(applied), sum(requests.values()) / count, cpu, rss)


def _report(title: str, ours: Result, peer: Result) -> None:
    print(f"\n{title}")
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
    args = parser.parse_args()
    modes = {"both": (True, False), "on": (True,), "off": (False,)}[args.limits]
    with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as tmp:
        workdir = Path(tmp)
        audit_log = workdir / "audit.log"
        with controlplane.running(workdir / "plane", audit_log=audit_log) as plane:
            plane.install_crds()
            results = {}
            for limits in modes:
                for label in ("phoenix", "reference-go"):
                    print(f"{label}: {args.count} pipelines, rate limits {'on' if limits else 'off'}", file=sys.stderr)
                    results[label, limits] = _run(plane, workdir, audit_log, args.count, label, limits)
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
