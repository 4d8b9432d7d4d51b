"""A PhoenixProcessPipeline as Kubernetes objects, and its status from what runs.

Pure: the desired ConfigMap, workload and Service follow from the pipeline and
its rendered config alone, so applying them again after a restart changes
nothing. The config hash sits on the pod template, so a new config rolls the
pods while an unchanged one leaves them alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from phoenix_operator.models import kinds, pipeline
from phoenix_operator.reconcile import conditions, objects
from phoenix_operator.render import pipeline as render_pipeline

CONFIG_HASH_ANNOTATION = "phoenix.io/config-hash"
# Ready reasons that no waiting cures: the collectors cannot run at all, or
# the collector rejected the config, so nothing new was deployed.
COLLECTOR_FAILED = "CollectorFailed"
CONFIG_REJECTED = "ConfigRejected"
FINAL_READY_REASONS = (COLLECTOR_FAILED, CONFIG_REJECTED)
PIPELINE_LABEL = "phoenix.io/pipeline"
CONFIG_FILE = "config.yaml"
CONFIG_DIR = "/etc/otelcol"
PORTS = {
    "otlp-grpc": int(render_pipeline.Listen.otlp_grpc.rsplit(":", 1)[1]),
    "otlp-http": int(render_pipeline.Listen.otlp_http.rsplit(":", 1)[1]),
    "metrics": int(render_pipeline.Listen.prometheus.rsplit(":", 1)[1]),
    "telemetry": render_pipeline.Listen.telemetry_port,
}


@dataclass(frozen=True)
class Observed:
    """What the runtime reports about a pipeline's running collectors."""

    desired_replicas: int
    ready_replicas: int
    endpoints: dict[str, str]
    # the config the observed collectors run; ready ones with another config do not count
    config_hash: str | None
    # why the collectors cannot run, when that is final (a local process that did not start)
    failure: str | None = None


def child_name(name: str) -> str:
    return f"{name}-collector"


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "otelcol", "app.kubernetes.io/instance": child_name(name)}


def identity(obj: kinds.PhoenixProcessPipeline) -> tuple[str, str]:
    """The experiment and variant the pipeline's series are labelled with."""
    return obj.spec.experiment_ref or obj.metadata.name, obj.spec.variant or obj.spec.template


def _metadata(obj: kinds.PhoenixProcessPipeline) -> dict[str, Any]:
    experiment, variant = identity(obj)
    labels = {
        **selector_labels(obj.metadata.name),
        "app.kubernetes.io/managed-by": "phoenix",
        # Prometheus copies these onto the collector's own telemetry, as it does locally
        "phoenix.io/experiment": experiment,
        "phoenix.io/variant": variant,
        # the EndpointSlice controller copies it from the Service: whose collectors a slice routes to
        PIPELINE_LABEL: obj.metadata.name,
    }
    return {
        "name": child_name(obj.metadata.name),
        "namespace": obj.metadata.namespace,
        "labels": labels,
        "ownerReferences": [objects.owner_reference(obj)],
    }


def _container(spec: render_pipeline.AnyPipelineSpec, rendered: render_pipeline.RenderedConfig) -> dict[str, Any]:
    collector = spec.collector
    env: list[dict[str, Any]] = [{"name": name, "value": value} for name, value in rendered.runtime_env.items()]
    env += [
        {"name": s.env_var, "valueFrom": {"secretKeyRef": {"name": s.secret.name, "key": s.secret.key}}}
        for s in rendered.secret_env
    ]
    container: dict[str, Any] = {
        "name": "otelcol",
        "image": collector.image,
        "args": [f"--config={CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in PORTS.items()],
        "resources": collector.resources.to_wire(),
        "securityContext": objects.restricted_security_context(),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": "telemetry"}, "periodSeconds": 5},
        # restarted only when it stops listening: a slow /metrics under load makes it unready, not dead
        "livenessProbe": {"tcpSocket": {"port": "telemetry"}, "periodSeconds": 20},
    }
    if env:
        container["env"] = env
    return container


def manifests(obj: kinds.PhoenixProcessPipeline, rendered: render_pipeline.RenderedConfig) -> list[dict[str, Any]]:
    """ConfigMap, Deployment or DaemonSet, Service, the HPA when autoscaled and a Deployment's
    PodDisruptionBudget; all owned by the pipeline."""
    spec = obj.spec
    name = obj.metadata.name
    labels = selector_labels(name)
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(spec, rendered)],
        "volumes": [{"name": "config", "configMap": {"name": child_name(name)}}],
    }
    if spec.collector.node_selector:
        pod_spec["nodeSelector"] = dict(spec.collector.node_selector)
    if spec.collector.tolerations:
        pod_spec["tolerations"] = [t.to_wire() for t in spec.collector.tolerations]
    workload_spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            # managed-by lets the network-policy component tell Phoenix's collectors from others
            "metadata": {
                "labels": {**labels, "app.kubernetes.io/managed-by": "phoenix"},
                "annotations": {CONFIG_HASH_ANNOTATION: rendered.config_hash},
            },
            "spec": pod_spec,
        },
    }
    # a new config (a mirror added or removed, a promotion) rolls one pod at a time, the new one ready before
    # the old one stops: the pipeline keeps receiving and exporting throughout
    one_at_a_time = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    workload_spec["strategy" if spec.collector.mode == "deployment" else "updateStrategy"] = one_at_a_time
    autoscaling = spec.collector.autoscaling
    if spec.collector.mode == "deployment" and autoscaling is None:
        # with an autoscaler, the apply leaves spec.replicas alone: the HPA owns it
        workload_spec["replicas"] = spec.collector.replicas
    workload_kind = "Deployment" if spec.collector.mode == "deployment" else "DaemonSet"
    autoscaler = [] if autoscaling is None else [_autoscaler(obj, autoscaling)]
    # a node drain evicts one collector replica at a time, the rest keep receiving (a drain skips DaemonSets)
    disruption_budget = (
        [
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": _metadata(obj),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
            }
        ]
        if workload_kind == "Deployment"
        else []
    )
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(obj),
            "data": {CONFIG_FILE: rendered.text},
        },
        {
            "apiVersion": "apps/v1",
            "kind": workload_kind,
            "metadata": {**_metadata(obj), "annotations": dict(objects.CHOSEN_EXCEPTIONS)},
            "spec": workload_spec,
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _metadata(obj),
            "spec": {
                "selector": labels,
                "ports": [{"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in PORTS.items()],
            },
        },
        *autoscaler,
        *disruption_budget,
    ]


def _autoscaler(obj: kinds.PhoenixProcessPipeline, autoscaling: pipeline.Autoscaling) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(obj),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(obj.metadata.name)},
            "minReplicas": autoscaling.min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": autoscaling.target_cpu_utilization},
                    },
                }
            ],
        },
    }


def cluster_endpoints(obj: kinds.PhoenixProcessPipeline) -> dict[str, str]:
    host = f"{child_name(obj.metadata.name)}.{obj.metadata.namespace}.svc"
    return {
        "otlpGrpc": f"{host}:{PORTS['otlp-grpc']}",
        "otlpHttp": f"http://{host}:{PORTS['otlp-http']}",
        "metrics": f"http://{host}:{PORTS['metrics']}/metrics",
    }


def adaptation(adaptive: pipeline.AdaptiveStatus | None) -> render_pipeline.Adaptation:
    """What the adaptive loop last chose; before its first choice, no executable keeps detail."""
    if adaptive is None:
        return render_pipeline.Adaptation()
    return render_pipeline.Adaptation(tuple(adaptive.keep_executables), tuple(adaptive.protected_attributes))


def render(
    obj: kinds.PhoenixProcessPipeline,
    adaptive: pipeline.AdaptiveStatus | None = None,
    mirrors: Sequence[render_pipeline.Mirror] = (),
) -> render_pipeline.RenderedConfig:
    """The pipeline's config with the adaptive loop's last choice and the experiments' copies of its input;
    raises RenderError with a message for the user."""
    experiment, variant = identity(obj)
    return render_pipeline.render(
        obj.spec, experiment=experiment, variant=variant, adaptation=adaptation(adaptive), mirrors=mirrors
    )


def shape(
    obj: kinds.PhoenixProcessPipeline,
    adaptive: pipeline.AdaptiveStatus | None = None,
    mirrors: Sequence[render_pipeline.Mirror] = (),
) -> render_pipeline.RenderedConfig:
    """`render`'s config with placeholder label values for the pipeline's identity: what the collector's check
    judges, since any label value is valid, so that the pipelines of one spec share one check."""
    return render_pipeline.render(
        obj.spec, experiment="identity", variant="identity", adaptation=adaptation(adaptive), mirrors=mirrors
    )


def invalid_status(
    obj: kinds.PhoenixProcessPipeline | None,
    previous: pipeline.PipelineStatus,
    generation: int | None,
    message: str,
    now: datetime,
) -> pipeline.PipelineStatus:
    """ConfigValid=False and not Ready: nothing is deployed for a spec that does not render."""
    updated = conditions.set_condition(
        previous.conditions, "ConfigValid", "False", "InvalidSpec", message, generation, now
    )
    updated = conditions.set_condition(updated, "Ready", "False", "InvalidSpec", "the spec is invalid", generation, now)
    return previous.model_copy(update={"conditions": updated, "observed_generation": generation})


def rejected_status(
    obj: kinds.PhoenixProcessPipeline, previous: pipeline.PipelineStatus, refusal: str, now: datetime
) -> pipeline.PipelineStatus:
    """ConfigValid=False with the collector's own words; what runs keeps running, untouched."""
    generation = obj.metadata.generation
    updated = conditions.set_condition(
        previous.conditions, "ConfigValid", "False", "CollectorRejected", refusal, generation, now
    )
    running = f"config {previous.config_hash} keeps running" if previous.config_hash else "nothing was deployed"
    message = f"config rejected by the collector ({running}): {refusal}"
    updated = conditions.set_condition(updated, "Ready", "False", CONFIG_REJECTED, message, generation, now)
    return previous.model_copy(update={"conditions": updated, "observed_generation": generation})


def accepted_status(
    obj: kinds.PhoenixProcessPipeline, previous: pipeline.PipelineStatus, now: datetime
) -> pipeline.PipelineStatus:
    """The first word on a new generation, before it is rendered: not Ready until deployed."""
    generation = obj.metadata.generation
    if previous.observed_generation == generation:
        return previous  # resumed: the work queue reports what runs
    message = f"rendering and deploying generation {generation}"
    updated = conditions.set_condition(previous.conditions, "Ready", "False", "Deploying", message, generation, now)
    return previous.model_copy(update={"conditions": updated, "observed_generation": generation})


def _mirrored_to(rendered: render_pipeline.RenderedConfig) -> list[str]:
    return [m.experiment for m in rendered.mirrors]


def rendered_status(
    obj: kinds.PhoenixProcessPipeline,
    previous: pipeline.PipelineStatus,
    rendered: render_pipeline.RenderedConfig,
    now: datetime,
) -> pipeline.PipelineStatus:
    """ConfigValid as soon as the config renders; a new config is not Ready until it is deployed."""
    config_hash = rendered.config_hash
    generation = obj.metadata.generation
    updated = conditions.set_condition(
        previous.conditions, "ConfigValid", "True", "Rendered", f"config {config_hash}", generation, now
    )
    if previous.config_hash == config_hash:
        return previous.model_copy(update={"conditions": updated})
    updated = conditions.set_condition(
        updated, "Ready", "False", "Deploying", f"deploying config {config_hash}", generation, now
    )
    return previous.model_copy(
        update={
            "conditions": updated,
            "observed_generation": generation,
            "config_hash": config_hash,
            "mirrors": _mirrored_to(rendered),
            "ready_replicas": 0,
        }
    )


def status(
    obj: kinds.PhoenixProcessPipeline,
    previous: pipeline.PipelineStatus,
    rendered: render_pipeline.RenderedConfig,
    observed: Observed,
    now: datetime,
) -> pipeline.PipelineStatus:
    config_hash = rendered.config_hash
    generation = obj.metadata.generation
    updated = conditions.set_condition(
        previous.conditions, "ConfigValid", "True", "Rendered", f"config {config_hash}", generation, now
    )
    ready_replicas = observed.ready_replicas if observed.config_hash == config_hash else 0
    ready = observed.desired_replicas > 0 and ready_replicas >= observed.desired_replicas
    if observed.failure is not None:
        updated = conditions.set_condition(
            updated, "Ready", "False", COLLECTOR_FAILED, observed.failure, generation, now
        )
    else:
        updated = conditions.set_condition(
            updated,
            "Ready",
            "True" if ready else "False",
            "CollectorsReady" if ready else "WaitingForCollectors",
            f"{ready_replicas}/{observed.desired_replicas} collectors ready",
            generation,
            now,
        )
    return pipeline.PipelineStatus(
        observed_generation=generation,
        conditions=updated,
        config_hash=config_hash,
        mirrors=_mirrored_to(rendered),
        ready_replicas=ready_replicas,
        endpoints=observed.endpoints,
        adaptive=previous.adaptive,
    )
