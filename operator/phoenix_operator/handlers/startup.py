"""Starting the operator: kopf's settings, the runtime, the context the handlers share, then kopf's loop.

`phoenix operator run` parses its flags and calls `run`; importing this
module registers the handlers with kopf.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import kopf

from phoenix_operator import GROUP
from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.handlers import context, experiments, loadsims, metrics_server, pipelines, workqueue
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.render import sandbox
from phoenix_operator.runtime import base as runtime_base
from phoenix_operator.runtime import kubernetes as runtime_kubernetes
from phoenix_operator.runtime import local as runtime_local

# The handler modules register themselves with kopf on import.
HANDLER_MODULES = (experiments, loadsims, pipelines)
NoCredentials = runtime_kubernetes.NoCredentials


@dataclass(frozen=True)
class Options:
    namespaces: tuple[str, ...]
    all_namespaces: bool
    local: bool  # collectors and loads as processes on this machine, not workloads
    prometheus_url: str | None
    image: str | None  # None: the operator's own, from its pod
    # pipelines-ready timeout, Prometheus-unreachable timeout, measure step
    limits_seconds: tuple[float, float, float]
    deploy_rate: float
    metrics_port: int
    metrics_cert_dir: Path | None  # None: a self-signed certificate
    liveness_port: int
    peering: str | None
    json_logs: bool
    workdir: str | None


PEERING_LIFETIME_SECONDS = 20
# Seconds between attempts of one API request, about five minutes in all. kopf's default gives up after
# about a minute, and a watch that gives up stops the whole operator: an API server restarting on a busy
# machine answers 503 ("before all known HTTP paths have been installed") for longer than that.
API_RETRY_BACKOFFS_SECONDS = (1, 1, 2, 3, 5, 8, 13, 21, 30, 30, 30, 30, 30, 30, 30, 30)


class DiffBaseStorage(kopf.StatusDiffBaseStorage):
    """kopf's diff base in a status field, built from the fields it keeps rather than from a copy of the body.

    kopf deep-copies the whole object at every event, managed fields and status included, and then
    deletes all but the spec, labels, annotations and the fields handlers watch. Profiled at a burst of
    1,000 new pipelines, deep copies took 8.3% of the operator's time holding the GIL with kopf's build
    and 2.9% with this one, which hands kopf only those fields and so gets the same essence.

    kopf also builds one at every event of the workloads watched for readiness, which only event handlers
    see: it compares essences for change handlers, timers and daemons, and Phoenix has those for its own
    kinds alone. Those workloads, whose pod templates are the largest specs the operator watches, get an
    empty essence.
    """

    def build(self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None) -> kopf.BodyEssence:
        if not str(body.get("apiVersion", "")).startswith(f"{GROUP}/"):
            return cast(kopf.BodyEssence, {})
        metadata = body.get("metadata", {})
        kept: dict[str, Any] = {key: value for key, value in body.items() if key not in ("metadata", "status")}
        kept["metadata"] = {key: metadata[key] for key in ("labels", "annotations") if key in metadata}
        for field in extra_fields or ():
            path = field.split(".") if isinstance(field, str) else list(field or ())
            if not path or path[0] not in ("metadata", "status") or path[0] not in body:
                continue  # kept whole already, or absent
            if len(path) == 1:
                kept[path[0]] = body[path[0]]
            elif path[1] in body[path[0]]:
                kept.setdefault(path[0], {})[path[1]] = body[path[0]][path[1]]
        # a plain dict: kopf reads it as a mapping, and copying a Body walks its keys in Python
        return super().build(body=cast(kopf.Body, kept), extra_fields=extra_fields)


def _settings(peering: str | None) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # Progress lives in annotations, so the status schema stays strict; under a "kopf." prefix, which needs no
    # marker annotation to be recognised. The diff base is one status field. So a handled change costs one status
    # patch and no patch of the object itself.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=f"kopf.{GROUP}")
    settings.persistence.diffbase_storage = DiffBaseStorage(field="status.lastHandledConfiguration")
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.peering.standalone = peering is None
    if peering is not None:
        settings.peering.name = peering
        settings.peering.mandatory = True
        # Replicas of one Deployment are alike, and kopf pauses every replica that sees
        # a peer of its own priority: a random one makes exactly one of them active.
        settings.peering.priority = random.randint(1, 2**31 - 1)  # noqa: S311 (an election, not a secret)
        # a replica's record expires this long after its last keep-alive: a standby
        # takes over from a killed active one within it
        settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    settings.execution.max_workers = 4
    settings.networking.error_backoffs = API_RETRY_BACKOFFS_SECONDS
    return settings


def run(options: Options) -> None:
    """Run until stopped; raises NoCredentials when no cluster can be reached."""
    kopf.configure(verbose=False, log_format=kopf.LogFormat.JSON if options.json_logs else kopf.LogFormat.PLAIN)
    # One line per Prometheus request, or per handler and timer success (which
    # kopf would also post as an Event), would bury the operator's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    api = runtime_kubernetes.Api(runtime_kubernetes.api_client())
    prometheus_url = options.prometheus_url
    local: runtime_local.LocalRuntime | None = None
    if options.local:
        local = runtime_local.LocalRuntime.start(
            options.workdir, f"127.0.0.1:{options.metrics_port}" if options.metrics_port else None, secrets=api
        )
        chosen: runtime_base.Runtime = local
        prometheus_url = prometheus_url or local.prometheus_url
        logging.getLogger("phoenix").info("the local runtime's Prometheus serves %s", local.prometheus_url)
    else:
        image = options.image or runtime_kubernetes.own_image(api, os.environ)
        logging.getLogger("phoenix").info("LoadSim Jobs run the image %s", image)
        chosen = runtime_kubernetes.KubernetesRuntime(api, image)
    pipelines.watch_readiness(chosen)
    loadsims.watch_loads(chosen)
    if options.metrics_port:
        secured = None
        if not local:
            cert_dir = options.metrics_cert_dir or metrics_server.self_signed(
                Path(tempfile.mkdtemp(prefix="phoenix-metrics-")), ["phoenix-operator-metrics"]
            )
            secured = metrics_server.Secured(cert_dir, api.may_read_metrics)
        metrics_server.serve(options.metrics_port, secured)
    ready, unreachable, step = options.limits_seconds
    memo = kopf.Memo(
        context=context.Context(
            store=api,
            runtime=chosen,
            experiments=experiment_controller.Settings(
                reconcile_experiment.Limits(
                    pipelines_ready=timedelta(seconds=ready),
                    prometheus_unreachable=timedelta(seconds=unreachable),
                    measure_step=timedelta(seconds=step),
                ),
                prometheus_url,
            ),
            deploys=workqueue.WorkQueue(workqueue.Limits(options.deploy_rate, max(1, int(2 * options.deploy_rate)))),
        )
    )
    logging.getLogger("phoenix").info("starting the operator with the %s runtime", "local" if local else "kubernetes")
    # Done before the first object, not during it: API discovery and template
    # compilation. Then everything built so far, which lives as long as the
    # operator, leaves the garbage collector's reach: full collections that
    # traverse it stall every handler.
    api.discover(runtime_kubernetes.CHILD_KINDS)
    sandbox.compile_templates()
    gc.freeze()
    try:
        kopf.run(
            settings=_settings(options.peering),
            standalone=options.peering is None,
            peering_name=options.peering,
            clusterwide=options.all_namespaces,
            namespaces=options.namespaces,
            liveness_endpoint=f"http://0.0.0.0:{options.liveness_port}/healthz" if options.liveness_port else None,
            memo=memo,
        )
    finally:
        if local is not None:
            local.stop()
