"""`phoenix analyze`: run the verdict engine on a JSON input, offline."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from phoenix_analysis import contract
from phoenix_operator.cli import files, output


def summary_rows(result: contract.Result) -> list[tuple[str, str]]:
    rows = [
        ("decision", result.decision),
        ("series reduction", output.interval(result.series_reduction)),
        ("datapoint reduction", output.interval(result.datapoint_reduction)),
        ("monthly savings", output.interval(result.monthly_savings_usd, money=True)),
        ("fidelity", f"{result.fidelity.passed}/{result.fidelity.checked} queries pass"),
        ("samples", str(result.samples_used)),
    ]
    rows += [(f"query {q.name}", f"{q.status}: {output.interval(q.error)}") for q in result.fidelity.queries]
    rows += [(g.name, f"{g.status}: {output.interval(g.increase)}") for g in result.guardrails]
    rows += output.trust_rows(
        result.series_trend, result.input_agreement, result.anomalies, seconds_to_decide=result.seconds_to_decide
    )
    rows += [("reason", reason) for reason in result.reason_texts]
    return rows


def analyze(
    filename: Annotated[
        str,
        typer.Option("--filename", "-f", help="Input JSON (the analyze contract); - reads stdin."),
    ],
    fmt: Annotated[output.Format, typer.Option("--output", "-o", help="table, json or yaml.")] = output.Format.table,
) -> None:
    """Decide Promote, Reject or Inconclusive from paired measurements.

    The input holds per-sample active series and datapoints per minute of both
    variants, optional collector CPU and memory, optional accepted-points and
    uptime counters (the pairing check and the restart detector), critical
    query values, objectives, a cost model, alpha, the mode (sequential or
    fixed) and the planned number of samples (the trend is projected to it).
    """
    from phoenix_analysis import engine  # scipy: loaded by the commands that analyse, not at every start

    text = files.read_text(filename)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        output.fail(f"error: {filename}: invalid JSON (line {error.lineno}): {error.msg}")
    try:
        result = engine.analyze_input(contract.parse(data))
    except contract.InvalidInput as error:
        output.fail(*(f"error: {filename}: {p}" for p in error.problems))
    output.emit(result.to_json(), fmt, output.table("Phoenix verdict", ["", ""], summary_rows(result)))
