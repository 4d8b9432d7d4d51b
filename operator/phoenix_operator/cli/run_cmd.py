"""`phoenix run --local`: run an experiment end to end on this machine and print the verdict."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pydantic
import typer
from rich.console import Console

from phoenix_analysis import contract
from phoenix_operator import binaries
from phoenix_operator.cli import analyze_cmd, estimate_cmd, files, output
from phoenix_operator.models import common, experiment
from phoenix_operator.reconcile import verdict as verdict_status

if TYPE_CHECKING:
    from phoenix_operator.local import run as local_run

INTERRUPTED = 130


def _last(values: list[float | None]) -> float:
    return next((v for v in reversed(values) if v is not None), math.nan)


def _progress_line(progress: local_run.Progress, objective: float) -> str:
    elapsed = f"[{progress.elapsed_seconds:5.0f}s]"
    if progress.event is not None:
        _, reason, message = progress.event
        # a decision's message starts with the decision
        return f"{elapsed} {message}" if message.startswith(reason) else f"{elapsed} {reason}: {message}"
    analysis = progress.analysis
    measured = progress.measurement
    if analysis is None and measured and measured.baseline and measured.candidate:
        baseline, candidate = (
            f"{_last(v.active_series):,.0f} series, {_last(v.datapoints_per_minute):,.0f} datapoints/min"
            for v in (measured.baseline, measured.candidate)
        )
        return f"{elapsed} warming up: baseline {baseline}; candidate {candidate}"
    if analysis is None:
        return f"{elapsed} waiting for data: {measured.message if measured else ''}"
    reduction = analysis.series_reduction
    if reduction is None:
        return f"{elapsed} {analysis.reason_texts[0]}"
    variants = analysis.variants
    bounds = f"[{reduction.ci_low:.1%}, {reduction.ci_high:.1%}]"
    if analysis.decided_at_index is not None:
        leaning = f"final: {analysis.decision}"
    else:
        leaning = "leaning Promote" if reduction.estimate >= objective else "leaning Reject"
        blockers = []
        if analysis.input_agreement is not None and not analysis.input_agreement.agrees:
            blockers.append("the inputs differ")
        if analysis.anomalies is not None and analysis.anomalies.share > analysis.anomalies.limit:
            blockers.append("too many samples are anomalous")
        if blockers and reduction.estimate >= objective:
            leaning = f"no Promote while {' and '.join(blockers)}"
    return (
        f"{elapsed} series baseline {variants['baseline'].active_series:,.0f} / "
        f"candidate {variants['candidate'].active_series:,.0f}, "
        f"reduction {reduction.estimate:.1%} {bounds}, {leaning}"
    )


def _table_rows(
    status: experiment.ExperimentStatus, analysis: contract.Result | None, warmup_limit: str
) -> list[tuple[str, str]]:
    if analysis is None and status.verdict is None:  # interrupted during the warmup
        return [("decision", f"none ({status.phase})"), ("reason", "interrupted before the warmup ended")]
    if analysis is None:  # nothing was measured: the verdict says why
        assert status.verdict is not None
        return [("decision", status.verdict.decision), *(("reason", r) for r in status.verdict.reasons)]
    rows = analyze_cmd.summary_rows(analysis)
    rows[0] = ("decision", status.verdict.decision if status.verdict else f"none ({status.phase})")
    for variant in ("baseline", "candidate"):
        figures = analysis.variants.get(variant)
        if figures is not None:
            line = f"{figures.active_series:,.0f} series, {figures.datapoints_per_minute:,.0f} datapoints/min"
            rows.insert(1, (variant, line))
    if status.warmup is not None:
        samples = next(i for i, (name, _) in enumerate(rows) if name == "samples")
        rows.insert(samples, ("warmup", output.warmup(status.warmup.seconds, status.warmup.settled, warmup_limit)))
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
    measure_step: Annotated[
        str,
        typer.Option(
            "--measure-step",
            help="Time between analysed samples, as the operator's flag; collector CPU rates span four of them.",
        ),
    ] = "2s",
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Keep collector configs, logs and Prometheus data here (default: a temp dir)."),
    ] = None,
    save_input: Annotated[
        Path | None,
        typer.Option(
            "--save-input",
            help="Also write what the verdict was computed from, as `phoenix analyze -f` reads it (JSON).",
        ),
    ] = None,
) -> None:
    """Run an experiment and print its verdict.

    With --local, two otelcol-phoenix processes (baseline and candidate) get
    the same LoadSim load, a local Prometheus scrapes both, and the verdict is
    checked at every analysis interval, stopping early once it is final. The
    experiment goes through the operator's own state machine, with its
    objects kept in memory. Ctrl-C aborts it and prints what was measured so
    far (exit code 130); an experiment that ends Failed exits 1.

    Example: phoenix run --local -f examples/quickstart/experiment.yaml --report report.html
    """
    # the driver, its engine (scipy), the runtime and the report load here, not at every command's start
    from phoenix_operator.cli import report
    from phoenix_operator.local import run as local_run

    if not local:
        output.fail("error: only --local runs from the command line; on a cluster, kubectl apply the experiment")
    obj = files.load_experiment(filename)
    seconds = _duration("--duration", duration) if duration is not None else None
    step = _duration("--measure-step", measure_step)
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
    if obj.spec.analysis.prometheus is not None:
        # only the run's own Prometheus scrapes the collectors it starts
        analysis = obj.spec.analysis.model_copy(update={"prometheus": None})
        obj = obj.model_copy(update={"spec": obj.spec.model_copy(update={"analysis": analysis})})

    stop = threading.Event()
    # Ctrl-C, and the SIGTERM of `timeout` or a supervisor, stop the run the same
    # way: its collectors and Prometheus are stopped, and what was measured is shown
    previous = {sig: signal.signal(sig, lambda *_: _set_later(stop)) for sig in (signal.SIGINT, signal.SIGTERM)}
    console = Console(stderr=True, highlight=False)
    objective = obj.spec.analysis.objectives.min_series_reduction
    console.print(f"phoenix: running {obj.metadata.name} locally (Ctrl-C aborts it and reports what was measured)")
    options = local_run.Options(
        duration_seconds=seconds, measure_step_seconds=step, prometheus_port=prometheus_port, workdir=workdir
    )
    try:
        outcome = local_run.run(obj, options, lambda p: console.print(_progress_line(p, objective)), stop)
    except local_run.LocalRunError as error:
        output.fail(f"error: {error}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    final = outcome.status
    analysis_result = outcome.analysis
    if analysis_result is None and final.verdict is None and not outcome.interrupted:
        why = _failure(final) or outcome.last_problem or "no analysis ran before the run ended"
        output.fail(f"error: no verdict: {why}")
    if report_path is not None:
        if analysis_result is None:
            page = report.from_status(obj.metadata.name, obj.spec, final)
        else:
            page = report.from_run(obj.metadata.name, obj.spec, final, analysis_result, outcome.measurement, objective)
        report_path.write_text(page, encoding="utf-8")
        console.print(f"phoenix: report written to {report_path}")
    if save_input is not None and outcome.analysis_input is not None:
        save_input.write_text(json.dumps(outcome.analysis_input.to_json(), indent=1) + "\n")
        console.print(
            f"phoenix: the verdict's input written to {save_input}; phoenix analyze -f {save_input} replays it"
        )
    if outcome.interrupted:
        console.print("phoenix: interrupted; the results below are partial")
    elif final.phase != "Completed":
        console.print(f"phoenix: the experiment ended {final.phase}: {_failure(final)}")
    status = _status(final, analysis_result)
    if fmt is output.Format.table:
        rows = _table_rows(final, analysis_result, obj.spec.warmup)
        figures = analysis_result.variants.get("candidate") if analysis_result else None
        predicted = estimate_cmd.prediction_row(obj.spec, figures.active_series if figures else None)
        rows += [predicted] if predicted else []
        output.emit(status, fmt, output.table(f"Phoenix verdict: {obj.metadata.name}", ["", ""], rows))
    else:
        output.emit(status, fmt)
    sys.stdout.flush()
    if outcome.interrupted:
        raise typer.Exit(INTERRUPTED)
    if final.phase == "Failed":
        raise typer.Exit(1)


def _set_later(stop: threading.Event) -> None:
    """Set `stop` from another thread.

    A signal handler runs in the main thread between two bytecodes; if those
    are inside `stop.wait()` holding the event's (non-reentrant) lock, setting
    it right there would wait on that lock forever, and the run would hang.
    """
    threading.Thread(target=stop.set, name="phoenix-stop", daemon=True).start()


def _duration(flag: str, text: str) -> float:
    try:
        return common.duration_seconds(pydantic.TypeAdapter(common.Duration).validate_python(text))
    except pydantic.ValidationError:
        output.fail(f"error: {flag}: invalid value {text!r}: expected a duration such as 30s, 5m or 1h30m")


def _failure(status: experiment.ExperimentStatus) -> str:
    succeeded = next((c for c in status.conditions if c.type == "Succeeded"), None)
    return f"{succeeded.reason}: {succeeded.message}" if succeeded and succeeded.status == "False" else ""


def _status(status: experiment.ExperimentStatus, analysis: contract.Result | None) -> dict[str, Any]:
    """The experiment's status as the operator writes it, with the newest results."""
    wire = status.to_wire()
    if status.results is None and analysis is not None:
        wire["results"] = verdict_status.results(analysis).to_wire()
    return wire
