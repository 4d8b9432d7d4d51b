"""Benchmark: what 200 running experiments cost the operator, per experiment-minute, in steady state.

The operator runs against the test bed (real kube-apiserver, etcd,
controllers and kwok's nodes, whose pods report Running but run nothing)
and a real, empty Prometheus. The bench creates the experiments, waits until
every one is Running and has been measured, then counts over a steady
window: the operator's CPU-seconds (its own and its ended children's), its
API requests by verb and resource (the API server's audit log) and the
queries it sent Prometheus (Prometheus's own request counter).

What it measures: the operator's periodic work, each experiment's timer and
its measurement every `analysisInterval`. Prometheus holds no series, so each
measurement stops at its first query ("no series exported ... yet"); a
measured experiment also runs about two dozen queries and the engine, which
`bench/measurement_cost.py` and `bench/analyze_speed.py` time.

    .venv/bin/python -m bench.concurrent_experiments [--experiments 200] [--minutes 3]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from tests.harness import controlplane
from tests.harness import operator as harness

from bench import operator_scale
from phoenix_operator.runtime import local_components

GROUP, VERSION, PLURAL = "phoenix.io", "v1alpha1", "phoenixexperiments"
ANALYSIS_INTERVAL = "30s"  # the spec's default
QUERIES = re.compile(r'^prometheus_http_requests_total\{[^}]*handler="/api/v1/query(_range)?"[^}]*\} (\S+)$', re.M)


def _prometheus_queries(url: str) -> float:
    return sum(float(value) for _, value in QUERIES.findall(httpx.get(f"{url}/metrics", timeout=10).text))


def _phases(plane: controlplane.ControlPlane, namespace: str) -> dict[str, int]:
    listed = json.loads(plane.kubectl("get", "pexp", "-n", namespace, "-o", "json").stdout)["items"]
    phases: dict[str, int] = {}
    for item in listed:
        status = item.get("status") or {}
        measured = any(c.get("type") == "MeasurementAvailable" for c in status.get("conditions") or [])
        key = f"{status.get('phase', 'new')}{', measured' if measured else ''}"
        phases[key] = phases.get(key, 0) + 1
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    count = args.experiments
    with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as tmp:
        workdir = Path(tmp)
        audit_log = workdir / "audit.log"
        prometheus = local_components.LocalPrometheus([], workdir / "prometheus")
        prometheus.start()
        try:
            with controlplane.running(workdir / "plane", audit_log=audit_log) as plane:
                plane.install_crds()
                namespace = harness.namespace(plane)
                client = k8s_config.new_client_from_config(config_file=str(plane.kubeconfig))
                client.user_agent = operator_scale.BENCH_AGENT
                api = k8s.CustomObjectsApi(client)
                flags = ("--image", "registry.example/phoenix-operator:test", "--prometheus-url", prometheus.url)
                with harness.running(plane, namespace, workdir, *flags) as running:
                    pid = running.process.pid
                    assert pid is not None
                    for index in range(count):
                        body = harness.experiment(
                            f"e{index:04d}", duration="2h", warmup="30s", analysisInterval=ANALYSIS_INTERVAL
                        )
                        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
                    print(f"created {count} experiments", file=sys.stderr)

                    def all_measured() -> bool:
                        phases = _phases(plane, namespace)
                        print(f"  {phases}", file=sys.stderr)
                        return phases.get("Running, measured", 0) == count

                    harness.wait_for("every experiment Running and measured", all_measured, 900, running.log)
                    since, cpu, queries = (
                        time.time(),
                        operator_scale.cpu_seconds(pid),
                        _prometheus_queries(prometheus.url),
                    )
                    print(f"steady window: {args.minutes:g} minutes", file=sys.stderr)
                    time.sleep(60 * args.minutes)
                    until = time.time()
                    cpu = operator_scale.cpu_seconds(pid) - cpu
                    queries = _prometheus_queries(prometheus.url) - queries
                    rss = operator_scale.peak_rss_mb(pid)
                    phases = _phases(plane, namespace)
                requests = operator_scale.operator_requests(audit_log, since, until)
        finally:
            prometheus.stop()
    minutes = (until - since) / 60
    experiment_minutes = count * minutes
    print(f"\n{count} experiments Running for {minutes:.1f} minutes ({phases}), analysisInterval {ANALYSIS_INTERVAL}")
    print(f"operator CPU: {cpu:.1f} s, {cpu / (60 * minutes):.1%} of a core, {cpu / experiment_minutes:.4f} s per"
          " experiment-minute")  # fmt: skip
    print(f"API requests: {sum(requests.values())}, {sum(requests.values()) / experiment_minutes:.3f} per"
          " experiment-minute")  # fmt: skip
    for (agent, verb, resource), seen in requests.most_common():
        print(f"  {seen / experiment_minutes:8.3f}  {agent} {verb} {resource}")
    print(f"Prometheus queries: {queries:.0f}, {queries / experiment_minutes:.2f} per experiment-minute")
    print(f"peak RSS: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
