"""OpenTelemetry names behind Prometheus ones, by the collector's own translation rules.

The prometheus exporter turns `process.cpu.time` (unit `s`, a monotonic sum)
into `process_cpu_time_seconds_total`, and the attribute `host.name` into the
label `host_name`. The translation loses the dots, so it is run forwards over
the semantic conventions' names and inverted; a name outside them is guessed
(dots for underscores, unit and `_total` suffixes removed) and marked so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (name, unit, monotonic sum) of the hostmetrics process scraper and the process semantic conventions
PROCESS_METRICS = (
    ("process.cpu.time", "s", True),
    ("process.cpu.utilization", "1", False),
    ("process.memory.usage", "By", False),
    ("process.memory.virtual", "By", False),
    ("process.memory.utilization", "1", False),
    ("process.disk.io", "By", True),
    ("process.disk.operations", "{operations}", True),
    ("process.paging.faults", "{faults}", True),
    ("process.threads", "{threads}", False),
    ("process.open_file_descriptors", "{count}", False),
    ("process.context_switches", "{count}", True),
    ("process.signals_pending", "{signals}", False),
    ("process.handles", "{count}", False),
    ("process.uptime", "s", False),
)
ATTRIBUTES = (
    "host.name",
    "host.id",
    "host.arch",
    "os.type",
    "service.name",
    "service.instance.id",
    "process.pid",
    "process.parent_pid",
    "process.executable.name",
    "process.executable.path",
    "process.command",
    "process.command_line",
    "process.owner",
    "container.id",
    "k8s.pod.name",
    "k8s.namespace.name",
    "k8s.node.name",
)
# the exporter's unit words (a subset of its table: those the conventions above use)
_UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "%": "percent"}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def label_name(attribute: str) -> str:
    """The Prometheus label of an attribute: every character a label may not hold becomes `_`."""
    return _INVALID.sub("_", attribute)


def metric_name(name: str, unit: str, monotonic: bool) -> str:
    """The Prometheus name of a metric, with the unit and `_total` suffixes the exporter adds."""
    words = [w for w in _INVALID.sub("_", name).split("_") if w]
    unit_word = "ratio" if unit == "1" and not monotonic else _UNITS.get(unit, "")
    if unit_word and words[-1:] != [unit_word]:
        words.append(unit_word)
    if monotonic and words[-1:] != ["total"]:
        words.append("total")
    return "_".join(words)


_KNOWN_METRICS = {metric_name(*m): m[0] for m in PROCESS_METRICS}
_KNOWN_LABELS = {label_name(a): a for a in ATTRIBUTES}


@dataclass(frozen=True)
class Translated:
    name: str
    guessed: bool


def otel_metric(prometheus: str) -> Translated:
    known = _KNOWN_METRICS.get(prometheus)
    if known is not None:
        return Translated(known, guessed=False)
    words = prometheus.split("_")
    if words[-1:] == ["total"]:
        words.pop()
    if words and words[-1] in set(_UNITS.values()) | {"ratio"}:
        words.pop()
    return Translated(".".join(words), guessed=True)


def otel_attribute(label: str) -> Translated:
    known = _KNOWN_LABELS.get(label)
    if known is not None:
        return Translated(known, guessed=False)
    return Translated(label.replace("_", "."), guessed=True)
