"""Scoping a user's PromQL to one variant by rewriting its syntax tree.

Every vector selector in the query, wherever it sits (inside rate, topk, on
either side of a binary operation, in a subquery), gets the variant's label
matchers; matchers the user wrote for those labels are replaced. The query is
parsed with promql-parser and each selector is rebuilt from its parts, never
edited as text, so quoting inside label values cannot confuse the rewrite.

promql-parser prints label values without escaping them, so a value holding
a quote, a backslash or a line break would print as different PromQL; such
queries are refused with a clear error rather than silently changed.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping

import promql_parser

# MatchOp members are not hashable, so the mapping is a list of pairs.
_OPERATORS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)


def _operator(op: object) -> str:
    return next(text for member, text in _OPERATORS if member == op)


class QueryError(ValueError):
    """The query is not PromQL Phoenix can scope to a variant."""


def duration(seconds: float) -> str:
    """`seconds` as a PromQL duration in whole seconds, at least one: PromQL takes no fraction, and a query is
    printed back in whole seconds."""
    return f"{max(1, round(seconds))}s"


def _whole_seconds(delta: datetime.timedelta | None) -> None:
    """Refuse a duration under or between whole seconds, which printing the query back would change."""
    if delta is not None and delta.microseconds:
        raise QueryError(f"a duration of {delta.total_seconds():g}s is not whole seconds, which Phoenix requires")


def _at(modifier: object) -> str:
    kind = getattr(modifier, "type", None)
    if kind == promql_parser.AtModifierType.Start:
        return " @ start()"
    if kind == promql_parser.AtModifierType.End:
        return " @ end()"
    moment = getattr(modifier, "at", None)
    if isinstance(moment, datetime.datetime):
        return f" @ {moment.timestamp():.3f}"
    raise QueryError(f"unsupported @ modifier: {modifier!r}")


_UNPRINTABLE = ('"', "\\", "\n")


def _selector_text(selector: promql_parser.VectorSelector, labels: Mapping[str, str]) -> str:
    """The selector's name and matchers, with `labels` in place of any the user wrote for them."""
    if selector.matchers.or_matchers:
        raise QueryError("selectors with `or` matchers are not supported")
    for matcher in selector.matchers.matchers:
        if any(c in matcher.value for c in _UNPRINTABLE):
            raise QueryError(
                f"label value {matcher.value!r} of {matcher.name} holds a quote, backslash or "
                "line break, which cannot be scoped safely"
            )
    matchers = [
        f"{m.name}{_operator(m.op)}{json.dumps(m.value)}"
        for m in selector.matchers.matchers
        if m.name not in labels and not (selector.name and m.name == "__name__")
    ]
    matchers += [f"{name}={json.dumps(value)}" for name, value in labels.items()]
    return f"{selector.name or ''}{{{','.join(matchers)}}}"


def _scoped_selector(selector: promql_parser.VectorSelector, labels: Mapping[str, str]) -> promql_parser.Expr:
    text = _selector_text(selector, labels)
    if selector.offset is not None:
        _whole_seconds(selector.offset)
        seconds = int(selector.offset.total_seconds())
        text += f" offset {seconds}s" if seconds >= 0 else f" offset -{-seconds}s"
    if selector.at is not None:
        text += _at(selector.at)
    return promql_parser.parse(text)


def _parsed(query: str) -> promql_parser.Expr:
    try:
        return promql_parser.parse(query)
    except ValueError as error:
        raise QueryError(f"invalid PromQL: {error}") from None


def scope(query: str, labels: Mapping[str, str]) -> str:
    """`query` with `labels` (e.g. phoenix_variant) as equality matchers on every selector."""
    tree = _parsed(query)

    def visit(node: promql_parser.Expr) -> promql_parser.Expr | None:
        if isinstance(node, promql_parser.VectorSelector):
            return _scoped_selector(node, labels)
        if isinstance(node, promql_parser.MatrixSelector):
            _whole_seconds(node.range)
        elif isinstance(node, promql_parser.SubqueryExpr):
            for delta in (node.range, node.step, node.offset):
                _whole_seconds(delta)
        return None

    return str(promql_parser.transform(tree, visit))


def selectors(query: str, labels: Mapping[str, str]) -> list[str]:
    """The series `query` reads: each distinct vector selector that names its metric, scoped to `labels`,
    without offset or @. One that matches names by pattern is left out: a range function over it would
    give series of different metrics the same labels, which Prometheus refuses."""
    found: list[str] = []

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and (
            node.name
            or any(m.name == "__name__" and m.op == promql_parser.MatchOp.Equal for m in node.matchers.matchers)
        ):
            text = _selector_text(node, labels)
            if text not in found:
                found.append(text)

    promql_parser.transform(_parsed(query), visit)
    return found


def matchers(selector: str) -> list[str]:
    """The label matchers of a series selector, as PromQL text, without those on the metric name."""
    try:
        tree = promql_parser.parse(selector)
    except ValueError as error:
        raise QueryError(f"invalid series selector: {error}") from None
    if not isinstance(tree, promql_parser.VectorSelector):
        raise QueryError(f"not a series selector: {selector}")
    return [f"{m.name}{_operator(m.op)}{json.dumps(m.value)}" for m in tree.matchers.matchers if m.name != "__name__"]
