"""`phoenix loadsim run|estimate`: generate per-process metrics load, or size it first."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from phoenix_operator.cli import output
from phoenix_operator.loadsim import fleet

if TYPE_CHECKING:
    from phoenix_operator.loadsim import run as loadsim_run
from phoenix_operator.models import common, loadsim, manifests

Profile = Annotated[str, typer.Option("--profile", help="realistic, high-cardinality, process-churn or worker-growth.")]
Hosts = Annotated[int, typer.Option("--hosts", help="Simulated hosts.")]
Processes = Annotated[int, typer.Option("--processes-per-host", help="Processes on each host.")]
Churn = Annotated[float, typer.Option("--churn-per-minute", help="Processes replaced per host per minute.")]
Interval = Annotated[str, typer.Option("--interval", help="Time between batches, e.g. 10s.")]
Duration = Annotated[str, typer.Option("--duration", help="Total time to send, e.g. 5m.")]
Seed = Annotated[int, typer.Option("--seed", help="Fixes every pid, executable and value.")]


def _spec(
    profile: str, hosts: int, processes: int, churn: float, interval: str, duration: str, seed: int
) -> loadsim.LoadProfileSpec:
    raw: dict[str, Any] = {
        "profile": profile,
        "hosts": hosts,
        "processesPerHost": processes,
        "churnPerMinute": churn,
        "duration": duration,
        "seed": seed,
    }
    problems = []
    try:
        interval_seconds = common.duration_seconds(pydantic.TypeAdapter(common.Duration).validate_python(interval))
        raw["intervalSeconds"] = interval_seconds
    except pydantic.ValidationError:
        problems.append(f"--interval: invalid value {interval!r}: expected a duration such as 30s, 5m or 1h30m")
    try:
        spec = loadsim.LoadProfileSpec.model_validate(raw)
    except pydantic.ValidationError as error:
        flags = {
            "processesPerHost": "processes-per-host",
            "churnPerMinute": "churn-per-minute",
            "intervalSeconds": "interval",
        }
        problems += [
            f"--{flags.get(p.path, p.path) or 'options'}: {p.message}" if p.path else p.message
            for p in manifests.problems_of(error, raw)
        ]
    if problems:
        output.fail(*(f"error: {p}" for p in problems))
    return spec


def estimate(
    profile: Profile = "realistic",
    hosts: Hosts = 10,
    processes_per_host: Processes = 100,
    churn_per_minute: Churn = 0.0,
    interval: Interval = "10s",
    duration: Duration = "5m",
    seed: Seed = 42,
    fmt: Annotated[output.Format, typer.Option("--output", "-o")] = output.Format.table,
) -> None:
    """Print how many series a load will produce, without sending anything."""
    spec = _spec(profile, hosts, processes_per_host, churn_per_minute, interval, duration, seed)
    result = fleet.estimate(spec)
    data = {
        "batches": result.batches,
        "processes": result.processes,
        "uniqueSeries": result.unique_series,
        "activeSeries": result.active_series,
        "datapoints": result.datapoints,
    }
    rows = [(k, f"{v:,}") for k, v in data.items()]
    output.emit(data, fmt, output.table(f"LoadSim estimate: {spec.profile}", ["figure", "value"], rows))


def run(
    target: Annotated[list[str], typer.Option("--target", help="OTLP/HTTP endpoint; repeat for each pipeline.")],
    profile: Profile = "realistic",
    hosts: Hosts = 10,
    processes_per_host: Processes = 100,
    churn_per_minute: Churn = 0.0,
    interval: Interval = "10s",
    duration: Duration = "5m",
    seed: Seed = 42,
    max_speed: Annotated[
        bool,
        typer.Option("--max-speed", help="Send batches back to back instead of once per interval."),
    ] = False,
    metrics_port: Annotated[
        int,
        typer.Option(
            "--metrics-port", help="Serve LoadSim's own metrics on this port (0: off; a port in use: a warning)."
        ),
    ] = 0,
    metrics_address: Annotated[
        str,
        typer.Option("--metrics-address", help="The address --metrics-port listens on (0.0.0.0: all, as in a pod)."),
    ] = "127.0.0.1",
    summary_file: Annotated[
        Path | None,
        typer.Option(
            "--summary-file",
            help="Also write the JSON summary here, on one line (a Job uses /dev/termination-log).",
        ),
    ] = None,
) -> None:
    """Send the same per-process metrics to every target; print a JSON summary at the end.

    Example: phoenix loadsim run --profile process-churn --hosts 10
    --processes-per-host 100 --churn-per-minute 5 --interval 10s --duration 5m
    --target http://127.0.0.1:4318 --target http://127.0.0.1:5318
    """
    # the HTTP sender loads with the command that sends, not at every start
    from phoenix_operator.loadsim import run as loadsim_run
    from phoenix_operator.loadsim import sender

    spec = _spec(profile, hosts, processes_per_host, churn_per_minute, interval, duration, seed)
    for each in target:
        try:
            sender.check_reachable(each)
        except sender.UnreachableTarget as error:
            output.fail(f"error: {error}")
    if metrics_port:
        from prometheus_client import start_http_server

        for each in target:  # before the first scrape can come
            sender.count_from_zero(each)

        try:
            start_http_server(metrics_port, addr=metrics_address, registry=sender.REGISTRY)
        except OSError as error:
            # the load matters more than its counters: an experiment without them judges by its collectors' counts
            problem = error.strerror or error
            typer.echo(
                f"warning: --metrics-port {metrics_port} on {metrics_address}: {problem}; counters not served", err=True
            )
    ticks = fleet.Fleet(spec, 0).ticks
    with Progress(
        TextColumn("[bold]loadsim"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        disable=not sys.stderr.isatty(),
        console=None,
    ) as bar:
        task = bar.add_task("send", total=ticks, status="")

        def progress(p: loadsim_run.Progress) -> None:
            bar.update(task, completed=p.tick, status=f"{p.unique_series:,} series, {p.send_errors} errors")

        summary = loadsim_run.run(spec, target, paced=not max_speed, on_progress=progress)
    if summary_file is not None:
        try:
            summary_file.write_text(json.dumps(summary.to_dict(), separators=(",", ":")), encoding="utf-8")
        except OSError as error:
            typer.echo(f"warning: --summary-file: {error}", err=True)
    typer.echo(json.dumps(summary.to_dict(), indent=2))
    if any(t.send_errors or t.batches_dropped for t in summary.targets):
        raise typer.Exit(2)
