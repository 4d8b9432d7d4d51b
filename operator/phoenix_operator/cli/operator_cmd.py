"""`phoenix operator run`: the kopf operator, with Phoenix's settings."""

from __future__ import annotations

import enum
import gc
import logging
import re
from datetime import timedelta
from typing import Annotated

import kopf
import prometheus_client
import typer

from phoenix_operator import GROUP
from phoenix_operator.cli import output
from phoenix_operator.controllers import experiment as experiment_controller
from phoenix_operator.handlers import context, experiments, loadsims, pipelines, workqueue
from phoenix_operator.models import common
from phoenix_operator.reconcile import experiment as reconcile_experiment
from phoenix_operator.render import sandbox
from phoenix_operator.runtime import base as runtime_base
from phoenix_operator.runtime import kubernetes as runtime_kubernetes
from phoenix_operator.runtime import local as runtime_local

# The handler modules register themselves with kopf on import.
HANDLER_MODULES = (experiments, loadsims, pipelines)
DEFAULT_IMAGE = "phoenix-operator:0.1.0"


class RuntimeChoice(enum.StrEnum):
    kubernetes = "kubernetes"
    local = "local"


class LogFormat(enum.StrEnum):
    json = "json"
    plain = "plain"


def _settings(peering: str | None) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # progress and the diff base live in annotations, so the status schema stays strict
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.peering.standalone = peering is None
    if peering is not None:
        settings.peering.name = peering
        settings.peering.mandatory = True
    settings.execution.max_workers = 4
    return settings


def run(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="Watch this namespace; repeat for several.")
    ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Watch every namespace.")] = False,
    runtime: Annotated[
        RuntimeChoice,
        typer.Option(help="kubernetes: collectors and loads as workloads; local: as processes on this machine."),
    ] = RuntimeChoice.kubernetes,
    prometheus_url: Annotated[
        str | None,
        typer.Option(help="Prometheus that scrapes the collectors, for experiments that name none."),
    ] = None,
    image: Annotated[str, typer.Option(help="Image of LoadSim Jobs (this operator's own image).")] = DEFAULT_IMAGE,
    measure_step: Annotated[
        str,
        typer.Option(
            help="Time between analysed samples, at least the scrape interval; collector CPU rates span four of them."
        ),
    ] = "15s",
    pipelines_ready_timeout: Annotated[
        str, typer.Option(help="Fail an experiment whose pipelines are not ready by then.")
    ] = "10m",
    prometheus_timeout: Annotated[
        str, typer.Option(help="Fail an experiment whose Prometheus stays unreachable this long.")
    ] = "5m",
    deploy_rate: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Pipelines rendered, applied and reported per second at most, after a burst of twice as many"
            " (each is about five API requests); keeps a burst of new pipelines from slowing the API server.",
        ),
    ] = 5.0,
    metrics_port: Annotated[int, typer.Option(help="Serve the operator's metrics on this port (0: off).")] = 9090,
    liveness_port: Annotated[int, typer.Option(help="Serve /healthz on this port (0: off).")] = 8080,
    peering: Annotated[
        str | None, typer.Option(help="KopfPeering name for high availability; without it the operator runs alone.")
    ] = None,
    log_format: Annotated[LogFormat, typer.Option(help="json for log collectors, plain for people.")] = LogFormat.json,
    workdir: Annotated[
        str | None, typer.Option(help="With --runtime local: where collector configs, logs and Prometheus data go.")
    ] = None,
) -> None:
    """Run the operator: reconcile experiments, pipelines and loads until stopped.

    Examples:\n
      phoenix operator run -A --prometheus-url http://prometheus.monitoring:9090\n
      phoenix operator run -n dev --runtime local
    """
    if bool(namespace) == all_namespaces:
        output.fail("give --namespace (one or more) or --all-namespaces")
    for duration in (measure_step, pipelines_ready_timeout, prometheus_timeout):
        if not _is_duration(duration):
            output.fail(f"{duration!r} is not a duration such as 15s or 5m")
    kopf.configure(
        verbose=False, log_format=kopf.LogFormat.JSON if log_format == LogFormat.json else kopf.LogFormat.PLAIN
    )
    # One line per Prometheus request, or per handler and timer success (which
    # kopf would also post as an Event), would bury the operator's own messages.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    try:
        api = runtime_kubernetes.Api(runtime_kubernetes.api_client())
    except runtime_kubernetes.NoCredentials as error:
        output.fail(str(error), "set KUBECONFIG or run inside a cluster")
    if runtime == RuntimeChoice.local:
        local = runtime_local.LocalRuntime.start(
            workdir, f"127.0.0.1:{metrics_port}" if metrics_port else None, secrets=api
        )
        chosen: runtime_base.Runtime = local
        prometheus_url = prometheus_url or local.prometheus_url
        logging.getLogger("phoenix").info("the local runtime's Prometheus serves %s", local.prometheus_url)
    else:
        chosen = runtime_kubernetes.KubernetesRuntime(api, image)
    pipelines.watch_readiness(chosen)
    loadsims.watch_deletions(chosen)
    if metrics_port:
        prometheus_client.start_http_server(metrics_port, addr="0.0.0.0")  # noqa: S104
    memo = kopf.Memo(
        context=context.Context(
            store=api,
            runtime=chosen,
            experiments=experiment_controller.Settings(
                reconcile_experiment.Limits(
                    pipelines_ready=timedelta(seconds=common.duration_seconds(pipelines_ready_timeout)),
                    prometheus_unreachable=timedelta(seconds=common.duration_seconds(prometheus_timeout)),
                    measure_step=timedelta(seconds=common.duration_seconds(measure_step)),
                ),
                prometheus_url,
            ),
            deploys=workqueue.WorkQueue(workqueue.Limits(deploy_rate, max(1, int(2 * deploy_rate)))),
        )
    )
    logging.getLogger("phoenix").info("starting the operator with the %s runtime", runtime.value)
    # Done before the first object, not during it: API discovery and template
    # compilation. Then everything built so far, which lives as long as the
    # operator, leaves the garbage collector's reach: full collections that
    # traverse it stall every handler.
    api.discover(runtime_kubernetes.CHILD_KINDS)
    sandbox.compile_templates()
    gc.freeze()
    try:
        kopf.run(
            settings=_settings(peering),
            standalone=peering is None,
            peering_name=peering,
            clusterwide=all_namespaces,
            namespaces=namespace or (),
            liveness_endpoint=f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None,
            memo=memo,
        )
    finally:
        if runtime == RuntimeChoice.local:
            local.stop()


def _is_duration(text: str) -> bool:
    return re.fullmatch(common.DURATION_PATTERN, text) is not None
