"""`phoenix operator run`: the kopf operator, with Phoenix's settings."""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Annotated

import typer

from phoenix_operator.cli import output
from phoenix_operator.models import common


class RuntimeChoice(enum.StrEnum):
    kubernetes = "kubernetes"
    local = "local"


class LogFormat(enum.StrEnum):
    json = "json"
    plain = "plain"


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
        typer.Option(
            envvar="PHOENIX_PROMETHEUS_URL",
            help="Prometheus that scrapes the collectors, for experiments that name none.",
        ),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(
            help="Image of LoadSim Jobs. Default: the operator's own, read from its pod (POD_NAME and"
            " POD_NAMESPACE, which kustomize/base sets), so one image setting serves both."
        ),
    ] = None,
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
    metrics_port: Annotated[
        int,
        typer.Option(
            help="Serve the operator's /metrics on this port (0: off): over TLS, to bearer tokens whose user may get"
            " /metrics (ClusterRole phoenix-metrics-reader), as the API server's TokenReview and SubjectAccessReview"
            " decide. With --runtime local: plain HTTP on 127.0.0.1, for the runtime's own Prometheus."
        ),
    ] = 8443,
    metrics_cert_dir: Annotated[
        Path | None,
        typer.Option(
            help="tls.crt and tls.key for /metrics (a kubernetes.io/tls Secret mounted here)."
            " Default: a self-signed certificate made at start, in a temporary directory.",
        ),
    ] = None,
    liveness_port: Annotated[int, typer.Option(help="Serve /healthz on this port (0: off).")] = 8080,
    peering: Annotated[
        str | None,
        typer.Option(
            help="ClusterKopfPeering (or KopfPeering) name for high availability: of the replicas that share it, one"
            " is active and the others stand by, and a standby takes over within 20 s of the active one dying."
            " Without it the operator runs alone."
        ),
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
    if metrics_cert_dir is not None and not all((metrics_cert_dir / f).is_file() for f in ("tls.crt", "tls.key")):
        output.fail(f"--metrics-cert-dir: {metrics_cert_dir} must hold tls.crt and tls.key")
    if bool(namespace) == all_namespaces:
        output.fail("give --namespace (one or more) or --all-namespaces")
    for duration in (measure_step, pipelines_ready_timeout, prometheus_timeout):
        if not _is_duration(duration):
            output.fail(f"{duration!r} is not a duration such as 15s or 5m")
    # kopf, the handlers and the runtimes load only here: every other command starts without them
    from phoenix_operator.handlers import startup

    options = startup.Options(
        namespaces=tuple(namespace or ()),
        all_namespaces=all_namespaces,
        local=runtime == RuntimeChoice.local,
        prometheus_url=prometheus_url,
        image=image,
        limits_seconds=(
            common.duration_seconds(pipelines_ready_timeout),
            common.duration_seconds(prometheus_timeout),
            common.duration_seconds(measure_step),
        ),
        deploy_rate=deploy_rate,
        metrics_port=metrics_port,
        metrics_cert_dir=metrics_cert_dir,
        liveness_port=liveness_port,
        peering=peering,
        json_logs=log_format == LogFormat.json,
        workdir=workdir,
    )
    try:
        startup.run(options)
    except startup.NoCredentials as error:
        output.fail(str(error), "set KUBECONFIG or run inside a cluster")


def _is_duration(text: str) -> bool:
    return re.fullmatch(common.DURATION_PATTERN, text) is not None
