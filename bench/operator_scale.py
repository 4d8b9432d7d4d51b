"""Benchmark: the operator under 1,000 new pipelines, against a minimal kopf operator.

Both operators run in turn against the same real kube-apiserver + etcd, each
in its own namespace, with the same kopf settings. The bench creates N
PhoenixProcessPipelines as fast as the API accepts them and watches for the
first status on each. Phoenix acknowledges each at once, then renders its
config and server-side applies a ConfigMap, a Deployment and a Service at its
--deploy-rate; the reference only writes a status.
Reported: throughput (pipelines with a status per second), p50/p99 time from
create to first status, and each operator's peak RSS, with the ratios. For
Phoenix, whose first status says the config is valid and being deployed, the
p50/p99 time until its children are applied is printed too.

    .venv/bin/python -m bench.operator_scale [--count 1000] [--deploy-rate N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch
from tests.harness import controlplane
from tests.harness import operator as harness

from phoenix_operator.runtime import process

GROUP, VERSION, PLURAL = "phoenix.io", "v1alpha1", "phoenixprocesspipelines"


@dataclass
class Result:
    name: str
    throughput: float
    p50: float
    p99: float
    peak_rss_mb: float
    deployed: tuple[float, float] | None  # p50, p99 from create to children applied


def _deployed(status: dict[str, object]) -> bool:
    conditions = status.get("conditions")
    ready = [c for c in conditions if c.get("type") == "Ready"] if isinstance(conditions, list) else []
    return bool(ready) and ready[0].get("reason") not in ("Deploying", None)


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[int(0.99 * (len(ordered) - 1))]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(
    api: k8s.CustomObjectsApi, namespace: str, count: int, operator_pid: int, label: str, deploys: bool
) -> Result:
    created: dict[str, float] = {}
    first_status: dict[str, float] = {}
    deployed: dict[str, float] = {}
    done = threading.Event()

    def finished() -> bool:
        return len(first_status) == count and (not deploys or len(deployed) == count)

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
                if status and name not in deployed and _deployed(status):
                    deployed[name] = time.monotonic()
                if finished():
                    stream.stop()
        done.set()

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    time.sleep(1.0)  # let the watch start before the first create
    began = time.monotonic()
    for i in range(count):
        name = f"p{i:05d}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PhoenixProcessPipeline",
            "metadata": {"name": name},
            "spec": {"template": "baseline"},
        }
        created[name] = time.monotonic()
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        if (i + 1) % 200 == 0:
            print(f"  {label}: created {i + 1}/{count}, {len(first_status)} with a status", file=sys.stderr)
    done.wait(timeout=960)
    if not finished():
        raise SystemExit(f"{label}: {len(first_status)}/{count} got a status, {len(deployed)} deployed in 15 minutes")
    p50, p99 = _percentiles([first_status[n] - created[n] for n in created])
    finished = max(first_status.values())
    applied = _percentiles([deployed[n] - created[n] for n in created]) if deployed else None
    return Result(label, count / (finished - began), p50, p99, _peak_rss_mb(operator_pid), applied)


def _run(
    plane: controlplane.ControlPlane, workdir: Path, count: int, label: str, argv: list[str] | None, *options: str
) -> Result:
    namespace = harness.namespace(plane)
    api = k8s.CustomObjectsApi(k8s_config.new_client_from_config(config_file=str(plane.kubeconfig)))
    if argv is None:
        context = harness.running(plane, namespace, workdir, "--prometheus-url", "http://127.0.0.1:9", *options)
        with context as running:
            assert running.process.pid is not None
            return _measure(api, namespace, count, running.process.pid, label, deploys=True)
    managed = process.ManagedProcess(
        label, [*argv, namespace], workdir / f"{label}.log", env={**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
    )
    managed.start()
    try:
        time.sleep(3.0)  # kopf's start-up: login and the first list
        assert managed.pid is not None
        return _measure(api, namespace, count, managed.pid, label, deploys=False)
    finally:
        managed.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--deploy-rate", help="the operator's --deploy-rate; its default if not given")
    args = parser.parse_args()
    options = ["--deploy-rate", args.deploy_rate] if args.deploy_rate else []
    with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as tmp:
        workdir = Path(tmp)
        with controlplane.running(workdir / "plane") as plane:
            plane.install_crds()
            print(f"creating {args.count} pipelines for each operator", file=sys.stderr)
            ours = _run(plane, workdir, args.count, "phoenix", None, *options)
            reference = _run(
                plane, workdir, args.count, "minimal-kopf", [sys.executable, "-m", "bench.reference_operator"]
            )
    print(f"{'operator':<14} {'pipelines/s':>12} {'p50 s':>8} {'p99 s':>8} {'peak RSS MB':>12}")
    for result in (ours, reference):
        latency = f"{result.p50:>8.2f} {result.p99:>8.2f}"
        print(f"{result.name:<14} {result.throughput:>12.1f} {latency} {result.peak_rss_mb:>12.0f}")
    if ours.deployed is not None:
        rate = f"--deploy-rate {args.deploy_rate}" if args.deploy_rate else "the default --deploy-rate"
        applied = f"p50 {ours.deployed[0]:.2f} s, p99 {ours.deployed[1]:.2f} s"
        print(f"phoenix, create to children applied ({rate}): {applied}")
    print(
        f"ratio phoenix/minimal-kopf: throughput {ours.throughput / reference.throughput:.2f}, "
        f"p50 latency {ours.p50 / reference.p50:.2f}, p99 latency {ours.p99 / reference.p99:.2f}, "
        f"RSS {ours.peak_rss_mb / reference.peak_rss_mb:.2f} (targets: latency <= 1.5, RSS <= 300 MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
