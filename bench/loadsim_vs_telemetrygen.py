"""Benchmark: LoadSim vs telemetrygen, datapoints per second per core.

Both generators run side by side in the same run, pinned to the same single
core, against the same real otelcol-phoenix (pinned to the other core). Points
are what the collector itself counts as accepted
(otelcol_receiver_accepted_metric_points) over a steady-state window, so one
neutral meter counts for both. "Per core" divides them by the CPU seconds the
generator used in that window: when the collector is the bottleneck a
generator waits, and waiting is not charged to it. Runs alternate to spread
machine noise.

    .venv/bin/python -m bench.loadsim_vs_telemetrygen [--window 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.harness import otlp

from phoenix_operator import binaries
from phoenix_operator.models import pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import local_components

GENERATOR_CORE, COLLECTOR_CORE = 0, 1


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    argv: list[str], collector: local_components.LocalCollector, warmup: float, window: float
) -> tuple[float, float]:
    """(accepted points per wall second, accepted points per generator CPU second)."""
    generator = subprocess.Popen(
        ["taskset", "-c", str(GENERATOR_CORE), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(warmup)
        before, started, cpu_before = (
            otlp.accepted_points(collector.telemetry_address),
            time.monotonic(),
            cpu_seconds(generator.pid),
        )
        time.sleep(window)
        after, ended, cpu_after = (
            otlp.accepted_points(collector.telemetry_address),
            time.monotonic(),
            cpu_seconds(generator.pid),
        )
    finally:
        os.killpg(generator.pid, 15)
        generator.wait(timeout=30)
    points = after - before
    return points / (ended - started), points / max(cpu_after - cpu_before, 1e-9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=4.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    telemetrygen = binaries.require(binaries.TELEMETRYGEN)
    phoenix = shutil.which("phoenix", path=str(Path(sys.executable).parent))
    if phoenix is None or shutil.which("taskset") is None:
        print("error: needs the phoenix console script and taskset", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="phoenix-bench-") as workdir:
        spec = pipeline.BaselineVariant(template="baseline")
        collector = local_components.LocalCollector(
            "collector",
            lambda listen: render_pipeline.render(spec, experiment="bench", variant="baseline", listen=listen).text,
            Path(workdir),
        )
        collector.start()
        assert collector.process is not None and collector.process.pid is not None
        os.sched_setaffinity(collector.process.pid, {COLLECTOR_CORE})
        port = collector.listen.otlp_http.rsplit(":", 1)[1]
        loadsim_argv = [
            phoenix,
            "loadsim",
            "run",
            "--profile",
            "realistic",
            "--hosts",
            "10",
            "--processes-per-host",
            "100",
            "--interval",
            "1s",
            "--duration",
            "10h",
            "--max-speed",
            "--target",
            collector.otlp_http_url,
        ]
        telemetrygen_argv = [
            str(telemetrygen),
            "metrics",
            "--otlp-http",
            "--otlp-insecure",
            "--otlp-endpoint",
            f"127.0.0.1:{port}",
            "--rate",
            "0",
            "--workers",
            "1",
            "--duration",
            "inf",
        ]
        per_core: dict[str, list[float]] = {"loadsim": [], "telemetrygen": []}
        try:
            for round_number in range(args.rounds):
                for name, argv in (("loadsim", loadsim_argv), ("telemetrygen", telemetrygen_argv)):
                    delivered, efficiency = measure(argv, collector, args.warmup, args.window)
                    per_core[name].append(efficiency)
                    print(
                        f"round {round_number + 1} {name:12s} "
                        f"delivered {delivered:11,.0f} points/s, "
                        f"{efficiency:11,.0f} points per generator CPU-second",
                        flush=True,
                    )
        finally:
            collector.stop()
    loadsim_rate = statistics.median(per_core["loadsim"])
    peer_rate = statistics.median(per_core["telemetrygen"])
    print(f"loadsim      median {loadsim_rate:12,.0f} datapoints/s/core")
    print(f"telemetrygen median {peer_rate:12,.0f} datapoints/s/core")
    print(f"ratio loadsim/telemetrygen = {loadsim_rate / peer_rate:.2f} (target >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
