"""Pipeline specs that the golden, injection and collector-validation tests share."""

from __future__ import annotations

from typing import Any

import pydantic

from phoenix_operator.models import pipeline
from phoenix_operator.render import pipeline as render_pipeline

_VENDOR = {
    "name": "vendor",
    "type": "otlphttp",
    "endpoint": "https://otlp.vendor.example/v1",
    "headers": [{"name": "api-key", "valueFrom": {"secretKeyRef": {"name": "vendor", "key": "api-key"}}}],
}

CASES: dict[str, dict[str, Any]] = {
    "baseline-defaults": {"template": "baseline"},
    "baseline-tuned": {
        "template": "baseline",
        "parameters": {"memoryLimitMib": 2048, "batchTimeout": "5s"},
        "collector": {"resources": {"limits": {"memory": "4Gi"}}},
    },
    "candidate-drop-only": {
        "template": "candidate",
        "parameters": {"dropMetrics": ["process.memory.virtual"]},
    },
    "candidate-aggregate": {
        "template": "candidate",
        "parameters": {
            "aggregateAwayAttributes": [
                "process.pid",
                "process.parent_pid",
                "process.command_line",
            ],
            "dropMetrics": ["process.memory.virtual", "process.disk.io"],
        },
    },
    "candidate-keep-processes": {
        "template": "candidate",
        "parameters": {
            "aggregateAwayAttributes": ["process.pid"],
            "keepProcesses": {"executableNames": ["postgres", "java"]},
        },
    },
    "candidate-extra-exporter": {
        "template": "candidate",
        "parameters": {"aggregateAwayAttributes": ["process.pid"]},
        "exporters": [_VENDOR],
    },
    "adaptive-initial": {"template": "adaptive", "parameters": {"seriesBudget": 5000}},
    "adaptive-budget": {"template": "adaptive", "parameters": {"seriesBudget": 5000, "maxK": 2}},
    "adaptive-protected": {"template": "adaptive", "parameters": {"seriesBudget": 5000}},
    "baseline-mirrored": {"template": "baseline", "exporters": [_VENDOR]},
}

# what the adaptive loop chose: nothing yet, a keep list longer than maxK, and attributes a query needs
ADAPTATIONS = {
    "adaptive-budget": render_pipeline.Adaptation(("nginx", "redis", "mysqld")),
    "adaptive-protected": render_pipeline.Adaptation(("postgres",), ("process.executable.name", "process.owner")),
}


def _shadows(experiment: str) -> tuple[tuple[str, str], ...]:
    return tuple((v, f"http://{experiment}-{v}-collector.ns.svc:4318") for v in ("baseline", "candidate"))


# the experiments a pipeline's input is copied to: one whole, one a quarter of its hosts
MIRRORS = {
    "baseline-mirrored": (
        render_pipeline.Mirror("lean", _shadows("lean")),
        render_pipeline.Mirror("sampled", _shadows("sampled"), 0.25),
    )
}


def spec(name: str) -> render_pipeline.AnyPipelineSpec:
    adapter: pydantic.TypeAdapter[render_pipeline.AnyPipelineSpec] = pydantic.TypeAdapter(pipeline.PipelineSpec)
    return adapter.validate_python(CASES[name])


def rendered(name: str, listen: render_pipeline.Listen | None = None) -> render_pipeline.RenderedConfig:
    return render_pipeline.render(
        spec(name),
        experiment="golden",
        variant=name.split("-")[0],
        listen=listen or render_pipeline.Listen(),
        adaptation=ADAPTATIONS.get(name, render_pipeline.Adaptation()),
        mirrors=MIRRORS.get(name, ()),
    )
