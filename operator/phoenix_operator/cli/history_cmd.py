"""`kubectl phoenix history`: finished experiments over time, and what their promotions save."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from phoenix_operator.cli import cluster, history, output


class HistoryFormat(enum.StrEnum):
    table = "table"
    json = "json"


def _money(value: float | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def history_cmd(
    namespace: Annotated[str | None, cluster.NamespaceOption] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    fmt: Annotated[HistoryFormat, typer.Option("--output", "-o", help="table or json.")] = HistoryFormat.table,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a page charting the savings over time.", dir_okay=False)
    ] = None,
    context: Annotated[str | None, cluster.ContextOption] = None,
) -> None:
    """Every experiment with a verdict, oldest first, and the monthly savings of the promotions in effect.

    A promotion in effect shows what it saves now: with a drift watch, the
    verdict's savings scaled by the share of the input the promoted pipeline
    removes at the watch's last check; without one, the verdict's. A
    rolled-back promotion saves nothing.

    Example: kubectl phoenix history -A --html history.html
    """
    target = cluster.connect(context, namespace)
    found = history.entries(target.experiments(all_namespaces))
    scope = "every namespace" if all_namespaces else f"namespace {target.namespace}"
    total = history.promoted_total(found)
    if html is not None:
        from phoenix_operator.cli import report  # jinja2's HTML templates load only for --html

        try:
            html.write_text(report.from_history(scope, found, history.running_total(found)), encoding="utf-8")
        except OSError as error:
            output.fail(f"error: cannot write {html}: {error.strerror}")
    if fmt is HistoryFormat.json:
        output.emit(
            {"experiments": [e.to_json() for e in found], "promotedMonthlySavingsUsd": total}, output.Format.json
        )
        return
    if not found:
        typer.echo(f"No experiment has a verdict in {scope}.", err=True)
        return
    headers = ["DECIDED", "NAMESPACE", "NAME", "DECISION", "REDUCTION", "SAVINGS/MO", "TARGET", "SAVES NOW/MO"]
    rows = [
        [
            f"{e.decided_at:%Y-%m-%d %H:%M}",
            e.namespace,
            e.name,
            e.decision,
            output.interval(e.series_reduction),
            output.interval(e.savings, money=True),
            e.target or "",
            "rolled back" if e.rolled_back_at else _money(e.realized),
        ]
        for e in found
    ]
    output.columns(headers, rows)
    in_effect = sum(1 for e in found if e.realized is not None)
    typer.echo(f"\n{in_effect} promotions in effect save {_money(total) or '$0.00'} a month.")
