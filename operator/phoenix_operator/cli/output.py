"""Everything the CLI prints goes through here: errors, YAML, JSON and tables."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, NoReturn, Protocol

import typer
from rich.console import Console
from rich.table import Table
from ruamel import yaml


class Format(StrEnum):
    table = "table"
    yaml = "yaml"
    json = "json"


class Bounded(Protocol):
    """An estimate with its confidence bounds: the engine's result and the status both have them."""

    @property
    def estimate(self) -> float: ...

    @property
    def ci_low(self) -> float: ...

    @property
    def ci_high(self) -> float: ...


class Trend(Protocol):
    @property
    def slope_per_hour(self) -> Bounded: ...

    @property
    def projected_at_end(self) -> Bounded: ...

    @property
    def crosses_objective_in_seconds(self) -> float | None: ...


class InputAgreement(Protocol):
    @property
    def difference(self) -> float: ...

    @property
    def tolerance(self) -> float: ...

    @property
    def agrees(self) -> bool: ...

    @property
    def baseline_batches_sent(self) -> int | None: ...

    @property
    def baseline_batches_failed(self) -> int | None: ...

    @property
    def candidate_batches_sent(self) -> int | None: ...

    @property
    def candidate_batches_failed(self) -> int | None: ...


class Flagged(Protocol):
    @property
    def variant(self) -> str: ...

    @property
    def pattern(self) -> str: ...


class Anomalies(Protocol):
    @property
    def samples(self) -> Sequence[Flagged]: ...

    @property
    def share(self) -> float: ...

    @property
    def limit(self) -> float: ...

    @property
    def excluded(self) -> int: ...


def trust_rows(
    trend: Trend | None,
    inputs: InputAgreement | None,
    anomalies: Anomalies | None,
    flagged: int | None = None,
    seconds_to_decide: float | None = None,
) -> list[tuple[str, str]]:
    """The rows that say whether the data can be trusted: the trend, the input agreement, the anomalies,
    and for an Inconclusive how much longer its intervals would need.

    `flagged` counts every flagged sample where the list is cut short, as in a status."""
    rows = []
    if seconds_to_decide is not None:
        rows.append(("to decide", f"about {seconds_to_decide / 60:,.1f} more minutes at the current variance"))
    if trend is not None:
        slope = trend.slope_per_hour
        text = f"{slope.estimate:+.1%}/h [{slope.ci_low:+.1%}, {slope.ci_high:+.1%}]"
        text += f", at the run's end {interval(trend.projected_at_end)}"
        if trend.crosses_objective_in_seconds is not None:
            text += f", reaches the objective in {trend.crosses_objective_in_seconds / 60:,.0f} min"
        rows.append(("trend", text))
    if inputs is not None:
        verdict = "agree" if inputs.agrees else "DIFFER"
        text = f"{verdict}: candidate {inputs.difference:+.2%} of the baseline (tolerance {inputs.tolerance:.1%})"
        lost = [
            f"{failed:,} of {sent + failed:,} to the {variant}"
            for variant, sent, failed in (
                ("baseline", inputs.baseline_batches_sent, inputs.baseline_batches_failed),
                ("candidate", inputs.candidate_batches_sent, inputs.candidate_batches_failed),
            )
            if sent is not None and failed is not None
        ]
        if lost:
            text += "; LoadSim batches lost: " + ", ".join(lost)
        rows.append(("input", text))
    if anomalies is not None:
        count = len(anomalies.samples) if flagged is None else flagged
        if count == 0:
            rows.append(("anomalies", "none"))
        else:
            patterns: dict[str, int] = {}
            for sample in anomalies.samples:
                patterns[f"{sample.pattern} ({sample.variant})"] = (
                    patterns.get(f"{sample.pattern} ({sample.variant})", 0) + 1
                )
            kept = (
                "; gaps and missed batches left the analysis, the others stay in"
                if anomalies.share <= anomalies.limit
                else ", above the limit"
            )
            told = ", ".join(f"{n} {label}" for label, n in patterns.items())
            share = f"{anomalies.share:.1%} of the samples against a limit of {anomalies.limit:.0%}"
            rows.append(("anomalies", f"{count} samples ({share}, missed batches aside){kept}: {told}"))
    return rows


def warmup(seconds: float, settled: bool, limit: str) -> str:
    """The warmup an experiment used, against the most it allowed."""
    if settled:
        return f"{seconds:.0f}s, until both pipelines settled (at most {limit})"
    return f"{seconds:.0f}s, the most allowed: the pipelines did not settle"


def interval(value: Bounded | None, money: bool = False, missing: str = "-") -> str:
    """An estimate with its confidence interval: 83.0% [82.8%, 83.2%], or in dollars."""
    if value is None:
        return missing

    def fmt(v: float) -> str:
        return f"${v:,.2f}" if money else f"{v:.1%}"

    return f"{fmt(value.estimate)} [{fmt(value.ci_low)}, {fmt(value.ci_high)}]"


def fail(*lines: str) -> NoReturn:
    """One clear line per problem on stderr, exit code 1, no traceback."""
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


def to_yaml(data: Any) -> str:
    dumper = yaml.YAML()
    dumper.default_flow_style = False
    stream = io.StringIO()
    dumper.dump(data, stream)
    return stream.getvalue()


def emit(data: Any, fmt: Format, table: Table | None = None) -> None:
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif fmt is Format.yaml:
        sys.stdout.write(to_yaml(data))
    elif table is not None:
        Console().print(table)
    else:
        sys.stdout.write(to_yaml(data))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    result = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        result.add_column(column)
    for row in rows:
        result.add_row(*("" if cell is None else str(cell) for cell in row))
    return result


def columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns as kubectl prints them: never wrapped, whatever the terminal width."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for line in (headers, *rows):
        sys.stdout.write(
            "   ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() + "\n"
        )
