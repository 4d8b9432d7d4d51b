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
