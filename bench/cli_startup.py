"""Benchmark: how soon the CLI answers, against kubectl's own client.

A plugin is judged beside kubectl. Each command runs five times; the median
wall time is printed beside `kubectl version --client`, measured in the same
run, with the ratio. Target: <= 0.5 s for each. `list` runs against a
kubeconfig that does not exist, so it measures the start and the reach for
the cluster, not the network.

    .venv/bin/python -m bench.cli_startup
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = str(REPO / "examples" / "quickstart" / "experiment.yaml")
PHOENIX = [sys.executable, "-m", "phoenix_operator"]
COMMANDS = {
    "phoenix --help": [*PHOENIX, "--help"],
    "phoenix validate -f quickstart": [*PHOENIX, "validate", "-f", QUICKSTART],
    "phoenix render -f quickstart": [*PHOENIX, "render", "-f", QUICKSTART],
    "kubectl phoenix list (no cluster)": [*PHOENIX, "list"],
}
TARGET_SECONDS = 0.5
RUNS = 5


def median_seconds(command: list[str]) -> float:
    env = {**os.environ, "KUBECONFIG": str(REPO / "no-such-kubeconfig")}
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, env=env, timeout=60, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("kubectl is not on the PATH: make tools installs it")
        return 1
    peer = median_seconds([kubectl, "version", "--client"])
    print(f"peer, kubectl version --client: {peer:.2f} s")
    slow = 0
    for name, command in COMMANDS.items():
        seconds = median_seconds(command)
        slow += seconds > TARGET_SECONDS
        print(f"{name}: {seconds:.2f} s, {seconds / peer:.1f}x kubectl (target <= {TARGET_SECONDS} s)")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
