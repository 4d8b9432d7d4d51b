"""Where the real components live: otelcol-phoenix, Prometheus and the test bed's Kubernetes parts.

Lookup order for each binary: its environment variable (e.g. PHOENIX_OTELCOL),
the tools cache that `make tools` fills (PHOENIX_TOOLS_DIR, by default
~/.cache/phoenix/tools), then PATH. A missing binary is one clear error that
says how to get it.
"""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Binary:
    name: str
    env_var: str
    cache_glob: str | None = None


OTELCOL = Binary("otelcol-phoenix", "PHOENIX_OTELCOL", "otelcol-*/otelcol-phoenix")
PROMETHEUS = Binary("prometheus", "PHOENIX_PROMETHEUS")
PROMTOOL = Binary("promtool", "PHOENIX_PROMTOOL")
ETCD = Binary("etcd", "PHOENIX_ETCD", "etcd-*/etcd")
KUBE_APISERVER = Binary("kube-apiserver", "PHOENIX_KUBE_APISERVER", "kube-apiserver-*/kube-apiserver")
# the rest of the test bed: the controllers, the scheduler and kwok's fake nodes
KUBE_CONTROLLER_MANAGER = Binary(
    "kube-controller-manager", "PHOENIX_KUBE_CONTROLLER_MANAGER", "kube-controller-manager-*/kube-controller-manager"
)
KUBE_SCHEDULER = Binary("kube-scheduler", "PHOENIX_KUBE_SCHEDULER", "kube-scheduler-*/kube-scheduler")
KWOK = Binary("kwok", "PHOENIX_KWOK", "kwok-*/kwok")
TELEMETRYGEN = Binary("telemetrygen", "PHOENIX_TELEMETRYGEN", "telemetrygen-*/telemetrygen")
# the Go controller-runtime peer of bench/operator_scale.py, built from bench/reference-go
REFERENCE_GO = Binary("reference-go", "PHOENIX_REFERENCE_GO", "reference-go-*/reference-go")
# the suite's third-party check of the install manifests and the operator's children
KUBE_SCORE = Binary("kube-score", "PHOENIX_KUBE_SCORE", "kube-score-*/kube-score")


class BinaryNotFound(Exception):
    def __init__(self, binary: Binary) -> None:
        super().__init__(f"{binary.name} not found: run `make tools`, or set {binary.env_var} to an existing binary")
        self.binary = binary


def tools_dir() -> Path:
    configured = os.environ.get("PHOENIX_TOOLS_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "phoenix" / "tools"


def find(binary: Binary) -> Path | None:
    explicit = os.environ.get(binary.env_var)
    if explicit:
        path = Path(explicit)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    cached = _newest_build(str(tools_dir()), binary.cache_glob) if binary.cache_glob else None
    if cached is not None:
        return cached
    on_path = shutil.which(binary.name)
    return Path(on_path) if on_path else None


# once per directory: the operator looks for the collector on every reconcile, and a glob reads the directory
@functools.lru_cache(maxsize=32)
def _newest_build(directory: str, pattern: str) -> Path | None:
    builds = sorted(Path(directory).glob(pattern))
    return builds[-1] if builds else None


def require(binary: Binary) -> Path:
    path = find(binary)
    if path is None:
        raise BinaryNotFound(binary)
    return path
