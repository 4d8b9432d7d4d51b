"""Render one pipeline spec into a collector config, parsed back and hashed."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
from ruamel import yaml
from ruamel.yaml import error as yaml_error
from ruamel.yaml import resolver as yaml_resolver

from phoenix_operator import labels
from phoenix_operator.models import common, pipeline
from phoenix_operator.render import checks, sandbox

AnyPipelineSpec = pipeline.BaselinePipelineSpec | pipeline.CandidatePipelineSpec | pipeline.AdaptivePipelineSpec
AnyVariant = pipeline.BaselineVariant | pipeline.CandidateVariant | pipeline.AdaptiveVariant


@dataclass(frozen=True)
class Listen:
    """Addresses the collector binds; in a pod every interface, locally loopback ports."""

    # A pod must accept traffic from its Service, so it binds every interface.
    otlp_grpc: str = "0.0.0.0:4317"
    otlp_http: str = "0.0.0.0:4318"
    prometheus: str = "0.0.0.0:8889"
    telemetry_host: str = "0.0.0.0"  # noqa: S104
    telemetry_port: int = 8888


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable the runtime must fill from a Secret key."""

    env_var: str
    secret: common.SecretKeyRef


@dataclass(frozen=True)
class Adaptation:
    """What the adaptive loop chose for a pipeline: rendering it again for other ports keeps it."""

    keep_executables: tuple[str, ...] = ()
    protected_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mirror:
    """A copy of the pipeline's input for one experiment's two shadows (`load.source: mirror`).

    `targets` are (variant, OTLP/HTTP URL) pairs. Resources are mirrored
    whole: those whose `sample_by` attribute hashes above `fraction` are left
    out, so every shadow gets the same resources, and the same ones each time.
    """

    experiment: str
    targets: tuple[tuple[str, str], ...]
    fraction: float = 1.0
    sample_by: str = "host.name"

    @property
    def component(self) -> str:
        return f"mirror-{self.experiment}"

    def drop_condition(self) -> str | None:
        """The OTTL condition of the resources not mirrored: Murmur3Hash gives 8 hex digits, so comparing
        them as strings compares the hash as a number."""
        if self.fraction >= 1.0:
            return None
        threshold = f"{min(int(self.fraction * 2**32), 2**32 - 1):08x}"
        attribute = sandbox.ottl_str(self.sample_by)
        return f'Murmur3Hash(resource.attributes[{attribute}]) >= "{threshold}"'


@dataclass(frozen=True)
class RenderedConfig:
    text: str
    config: dict[str, Any]
    config_hash: str
    secret_env: tuple[SecretEnv, ...]
    memory_limit_mib: int  # the memory_limiter's
    adaptation: Adaptation = Adaptation()
    mirrors: tuple[Mirror, ...] = ()

    @property
    def runtime_env(self) -> dict[str, str]:
        """The collector's environment besides secrets, the same in a pod and a local process.

        GOMEMLIMIT at the memory_limiter's limit makes Go collect garbage harder as the heap nears it:
        the limiter checks once a second and refuses only new data, so without it the garbage of a
        burst (and of the refused requests' decoding) can carry the process past its container's limit.
        """
        return {"GOMEMLIMIT": f"{self.memory_limit_mib}MiB"}


class RenderError(Exception):
    """A template could not be rendered or produced an unusable config."""


def _env_var(exporter: str, header: str) -> str:
    return "PHOENIX_HEADER_" + re.sub(r"[^A-Z0-9]", "_", f"{exporter}_{header}".upper())


def _extra_exporters(
    exporters: Sequence[pipeline.ExtraExporter],
) -> tuple[list[dict[str, Any]], tuple[SecretEnv, ...]]:
    rendered, secrets = [], []
    for exporter in exporters:
        component = "otlp_grpc" if exporter.type == "otlp" else "otlp_http"
        headers = []
        for header in exporter.headers:
            env_var = _env_var(exporter.name, header.name)
            headers.append({"name": header.name, "env_var": env_var})
            secrets.append(SecretEnv(env_var, header.value_from.secret_key_ref))
        rendered.append(
            {
                "component_id": f"{component}/{exporter.name}",
                "endpoint": exporter.destination,
                "headers": headers,
            }
        )
    return rendered, tuple(secrets)


# The memory_limiter refuses data below the container's limit, so the collector
# sheds load instead of being OOM-killed; the rest is Go runtime headroom.
MEMORY_LIMITER_SHARE = 0.8


def _within_container(memory_limit_mib: int, container_limit: common.Quantity | None) -> int:
    """The memory_limiter's limit: the parameter, lowered to fit a container memory limit."""
    container_bytes = common.quantity_bytes(container_limit) if container_limit is not None else None
    if container_bytes is None:
        return memory_limit_mib
    return max(1, min(memory_limit_mib, int(container_bytes * MEMORY_LIMITER_SHARE / 2**20)))


def config_hash(config: dict[str, Any]) -> str:
    """Stable across key order and formatting: sha256 of canonical JSON."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_loaders = threading.local()
# Configs kept parsed, about 10 KB each: a burst of new pipelines renders each several times within seconds.
PARSED_CONFIGS = 1024


class _Yaml12Resolver(yaml_resolver.VersionedResolver):
    """ruamel's resolver with the YAML version fixed at its default, 1.2. The shipped templates carry no %YAML
    directive, and with the libyaml parser ruamel looks the version up for every scalar by raising and catching
    an AttributeError: 5% of the operator's time holding the GIL during a burst of new pipelines."""

    @property
    def processing_version(self) -> tuple[int, int]:
        return (1, 2)


def _loader() -> yaml.YAML:
    """A libyaml-backed loader, one per thread: the operator renders on every reconcile, from several threads,
    and building one reads ruamel's plug-in directory."""
    loader: yaml.YAML | None = getattr(_loaders, "yaml", None)
    if loader is None:
        loader = _loaders.yaml = yaml.YAML(typ="safe")
        loader.Resolver = _Yaml12Resolver
    return loader


def _parse(text: str) -> dict[str, Any]:
    try:
        parsed = _loader().load(io.StringIO(text))
    except yaml_error.YAMLError as error:
        raise RenderError(f"template produced invalid YAML: {error}") from None
    if not isinstance(parsed, dict):
        raise RenderError("template produced no YAML mapping")
    return parsed


@functools.lru_cache(maxsize=PARSED_CONFIGS)
def _parsed(text: str) -> tuple[dict[str, Any], str]:
    """The config `text` renders and its hash, structure checked. Parsing costs most of a render, and the
    operator renders a pipeline's unchanged spec again at each of its workloads' events and the shared
    shape of a spec once per pipeline, so the same text is parsed once; the config is shared: read only."""
    config = _parse(text)
    checks.check_structure(config)
    return config, config_hash(config)


def render(
    spec: AnyPipelineSpec | AnyVariant,
    *,
    experiment: str,
    variant: str,
    listen: Listen = Listen(),
    exporters: Sequence[pipeline.ExtraExporter] = (),
    adaptation: Adaptation = Adaptation(),
    mirrors: Sequence[Mirror] = (),
) -> RenderedConfig:
    """Render `spec` (a pipeline, or an experiment's `{template, parameters}`).

    `adaptation` is what the adaptive loop chose; other templates ignore it.
    `mirrors` are the experiments the pipeline's input is copied to.
    """
    if isinstance(spec, pipeline.PipelineSpecBase):
        exporters = spec.exporters
    extra, secrets = _extra_exporters(exporters)
    keep: Sequence[str] = adaptation.keep_executables
    if isinstance(spec.parameters, pipeline.CandidateParameters):
        keep = spec.parameters.keep_processes.executable_names if spec.parameters.keep_processes else []
    memory_limit_mib = spec.parameters.memory_limit_mib
    if isinstance(spec, pipeline.PipelineSpecBase):
        memory_limit_mib = _within_container(memory_limit_mib, spec.collector.resources.limits.get("memory"))
    try:
        template = sandbox.environment().get_template(f"pipelines/{spec.template}.yaml.j2")
        text = template.render(
            parameters=spec.parameters,
            memory_limit_mib=memory_limit_mib,
            const_labels=labels.of_variant(experiment, variant),
            listen=listen,
            extra_exporters=extra,
            keep_executables=list(dict.fromkeys(keep)),
            protected_attributes=list(adaptation.protected_attributes),
            mirrors=[
                {
                    "id": m.component,
                    "drop_condition": m.drop_condition(),
                    "exporters": [
                        {"component_id": f"otlp_http/{m.component}-{variant}", "endpoint": url}
                        for variant, url in m.targets
                    ],
                }
                for m in mirrors
            ],
        )
    except jinja2.TemplateError as error:
        raise RenderError(f"template {spec.template}: {error}") from None
    try:
        config, hashed = _parsed(text)
    except checks.InvalidConfig as error:
        raise RenderError(f"template {spec.template}: {error}") from None
    return RenderedConfig(text, config, hashed, secrets, memory_limit_mib, adaptation, tuple(mirrors))
