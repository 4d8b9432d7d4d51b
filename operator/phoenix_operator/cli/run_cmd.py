"""`phoenix run --local`: run an experiment end to end on this machine and print the verdict."""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pydantic
import typer
from rich.console import Console

from phoenix_operator import binaries
from phoenix_operator.cli import analyze_cmd, files, output, report
from phoenix_operator.local import run as local_run
from phoenix_operator.models import common, kinds, manifests
from phoenix_operator.reconcile import verdict as verdict_status

INTERRUPTED = 130


def _load_experiment(filename: str) -> kinds.PhoenixExperiment:
    documents = files.load_documents(filename)
    experiments = [d for d in documents if isinstance(d, dict) and d.get("kind") == "PhoenixExperiment"]
    if len(experiments) != 1:
        output.fail(f"error: {filename}: expected exactly one PhoenixExperiment, found {len(experiments)}")
    try:
        obj = manifests.parse_object(experiments[0])
    except manifests.InvalidManifest as error:
        output.fail(*(f"{filename}: {problem}" for problem in error.problems))
    assert isinstance(obj, kinds.PhoenixExperiment)
    return obj


def _progress_line(snapshot: local_run.Snapshot, objective: float) -> str:
    elapsed = f"[{snapshot.elapsed_seconds:5.0f}s]"
    analysis = snapshot.analysis
    if analysis is None:
        return f"{elapsed} waiting for data: {snapshot.measurement.message}"
    reduction = analysis["series_reduction"]
    if reduction is None:
        return f"{elapsed} {analysis['reasons'][0]}"
    variants = analysis["variants"]
    bounds = f"[{reduction['ci_low']:.1%}, {reduction['ci_high']:.1%}]"
    if analysis["decided_at_index"] is not None:
        leaning = f"final: {analysis['decision']}"
    else:
        leaning = "leaning Promote" if reduction["estimate"] >= objective else "leaning Reject"
    return (
        f"{elapsed} series baseline {variants['baseline']['active_series']:,.0f} / "
        f"candidate {variants['candidate']['active_series']:,.0f}, "
        f"reduction {reduction['estimate']:.1%} {bounds}, {leaning}"
    )


def _status(analysis: dict[str, Any]) -> dict[str, Any]:
    return {
        "results": verdict_status.results(analysis).to_wire(),
        "verdict": verdict_status.verdict(analysis, datetime.now(UTC)).to_wire(),
    }


def _table_rows(analysis: dict[str, Any]) -> list[tuple[str, str]]:
    rows = analyze_cmd.summary_rows(analysis)
    for variant in ("baseline", "candidate"):
        figures = analysis["variants"][variant]
        rows.insert(
            1,
            (
                f"{variant}",
                f"{figures['active_series']:,.0f} series, {figures['datapoints_per_minute']:,.0f} datapoints/min",
            ),
        )
    return rows


def run(
    filename: Annotated[str, typer.Option("--filename", "-f", help="A PhoenixExperiment manifest.")],
    local: Annotated[
        bool,
        typer.Option("--local", help="Run collectors, LoadSim and Prometheus as local processes."),
    ] = False,
    duration: Annotated[str | None, typer.Option("--duration", help="Override spec.duration, e.g. 3m.")] = None,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="Also write a self-contained HTML report.")
    ] = None,
    fmt: Annotated[output.Format, typer.Option("--output", "-o", help="table, json or yaml.")] = output.Format.table,
    otelcol: Annotated[Path | None, typer.Option("--otelcol", help="otelcol-phoenix binary to use.")] = None,
    prometheus: Annotated[Path | None, typer.Option("--prometheus", help="prometheus binary to use.")] = None,
    prometheus_port: Annotated[
        int,
        typer.Option("--prometheus-port", help="Serve Prometheus here to watch it live (0: any free port)."),
    ] = 0,
) -> None:
    """Run an experiment and print its verdict.

    With --local, two otelcol-phoenix processes (baseline and candidate) get
    the same LoadSim load, a local Prometheus scrapes both, and the verdict is
    checked at every analysis interval, stopping early once it is final.
    Ctrl-C stops everything and prints what was measured so far.

    Example: phoenix run --local -f examples/quickstart/experiment.yaml --report report.html
    """
    if not local:
        output.fail("error: only --local runs from the command line; on a cluster, kubectl apply the experiment")
    obj = _load_experiment(filename)
    seconds = None
    if duration is not None:
        try:
            seconds = common.duration_seconds(pydantic.TypeAdapter(common.Duration).validate_python(duration))
        except pydantic.ValidationError:
            output.fail(f"error: --duration: invalid value {duration!r}: expected a duration such as 30s, 5m or 1h30m")
    for flag, path, binary in (
        ("--otelcol", otelcol, binaries.OTELCOL),
        ("--prometheus", prometheus, binaries.PROMETHEUS),
    ):
        if path is not None:
            if not path.is_file():
                output.fail(f"error: {flag}: {path}: no such file")
            os.environ[binary.env_var] = str(path.resolve())
        try:
            binaries.require(binary)
        except binaries.BinaryNotFound as error:
            output.fail(f"error: {error}")

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    console = Console(stderr=True, highlight=False)
    objective = obj.spec.analysis.objectives.min_series_reduction
    console.print(f"phoenix: running {obj.metadata.name} locally (Ctrl-C stops and reports what was measured)")

    def on_snapshot(snapshot: local_run.Snapshot) -> None:
        console.print(_progress_line(snapshot, objective))

    try:
        outcome = local_run.run(
            obj,
            local_run.Options(duration_seconds=seconds, prometheus_port=prometheus_port),
            on_snapshot,
            stop,
        )
    except local_run.LocalRunError as error:
        output.fail(f"error: {error}")
    finally:
        signal.signal(signal.SIGINT, previous)
    analysis = outcome.analysis
    if analysis is None:
        output.fail(f"error: no verdict: {outcome.last_problem or 'no analysis ran before the run ended'}")
    if report_path is not None:
        measurement = outcome.measurement
        text = report.render(
            obj.metadata.name,
            analysis,
            measurement.analysis_input if measurement else None,
            measurement.timestamps if measurement else [],
            objective,
        )
        report_path.write_text(text, encoding="utf-8")
        console.print(f"phoenix: report written to {report_path}")
    if outcome.interrupted:
        console.print("phoenix: interrupted; the results below are partial")
    status = _status(analysis)
    if fmt is output.Format.table:
        output.emit(
            status,
            fmt,
            output.table(f"Phoenix verdict: {obj.metadata.name}", ["", ""], _table_rows(analysis)),
        )
    else:
        output.emit(status, fmt)
    sys.stdout.flush()
    if outcome.interrupted:
        raise typer.Exit(INTERRUPTED)
