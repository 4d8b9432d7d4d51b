"""Which labels of which metrics a PromQL query needs, from its syntax tree.

A label is needed when removing it from the stored series (by summing the
series that differ only in it, as the candidate pipeline does) could change
the query's answer. Walking down from the root, the labels that matter
narrow at each `sum by` and `sum without` and widen wherever series are
compared one by one:
- `sum by (a)` needs only `a` of what it sums; `sum without (p)` needs all but `p`;
- `avg`, `max`, `min`, `quantile`, `stddev` and friends see each series, so
  they need every label of their input: summing series first would change them;
- `count`, `count_values`, `group` and `absent` count series: they need every
  label and are flagged as cardinality-sensitive;
- vector matching needs its `on` labels, or with plain or `ignoring` matching
  every label but the ignored ones; `group_left`/`group_right` labels too;
- matchers, and the sources of `label_replace` and `label_join`, are needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import promql_parser

from phoenix_operator.recommend import names

# aggregations whose answer is the same on pre-summed series
_SUMMING = frozenset({"sum"})
# aggregations that pass their operand's series through, labels and all
_SELECTING = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
_COUNTING = frozenset({"count", "count_values", "group"})
_COUNTING_CALLS = frozenset({"absent", "absent_over_time"})


@dataclass(frozen=True)
class Labels:
    """A set of label names, or every label but some (`every`)."""

    names: frozenset[str] = frozenset()
    every: bool = False

    @staticmethod
    def all_but(excluded: frozenset[str] = frozenset()) -> Labels:
        return Labels(excluded, every=True)

    def union(self, other: Labels) -> Labels:
        if self.every and other.every:
            return Labels.all_but(self.names & other.names)
        if self.every:
            return Labels.all_but(self.names - other.names)
        if other.every:
            return Labels.all_but(other.names - self.names)
        return Labels(self.names | other.names)

    def restrict(self, kept: frozenset[str], every_but: bool) -> Labels:
        """These labels, narrowed by an aggregation that keeps `kept` (or all but `kept`)."""
        if every_but:
            return Labels(self.names | kept, every=True) if self.every else Labels(self.names - kept)
        return Labels(kept - self.names) if self.every else Labels(self.names & kept)

    def resolve(self, present: frozenset[str]) -> frozenset[str]:
        """The names among `present` that this set holds."""
        return present - self.names if self.every else present & self.names


EVERY = Labels.all_but()


@dataclass
class Use:
    """What one query needs of one metric."""

    labels: Labels
    counts_series: bool = False


@dataclass
class QueryUsage:
    """Each metric a query reads and what it needs of it; selectors without a metric name are listed apart."""

    metrics: dict[str, Use] = field(default_factory=dict)
    unnamed_selectors: int = 0

    def _add(self, metric: str | None, labels: Labels, counts_series: bool) -> None:
        if metric is None:
            self.unnamed_selectors += 1
            return
        known = self.metrics.get(metric)
        if known is None:
            self.metrics[metric] = Use(labels, counts_series)
        else:
            known.labels = known.labels.union(labels)
            known.counts_series = known.counts_series or counts_series


def analyze(query: str) -> QueryUsage:
    """What `query` needs of each metric it reads; raises ValueError when it is not PromQL."""
    usage = QueryUsage()
    _visit(promql_parser.parse(query), EVERY, False, usage)
    return usage


def _selector_name(selector: promql_parser.VectorSelector) -> tuple[str | None, frozenset[str]]:
    """The metric's name (if fixed) and the labels the selector's matchers use."""
    name = selector.name or None
    used = set()
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__":
            if matcher.op == promql_parser.MatchOp.Equal:
                name = matcher.value
            continue
        used.add(matcher.name)
    return name, frozenset(used)


def _string_args(call: promql_parser.Call, first: int, last: int | None = None) -> frozenset[str]:
    return frozenset(a.val for a in call.args[first:last] if isinstance(a, promql_parser.StringLiteral))


def _visit(node: object, needed: Labels, counting: bool, usage: QueryUsage) -> None:
    if isinstance(node, promql_parser.VectorSelector):
        name, matched = _selector_name(node)
        usage._add(name, needed.union(Labels(matched)), counting)
    elif isinstance(node, promql_parser.MatrixSelector):
        _visit(node.vector_selector, needed, counting, usage)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        _visit(node.expr, needed, counting, usage)
    elif isinstance(node, promql_parser.AggregateExpr):
        _aggregate(node, needed, counting, usage)
    elif isinstance(node, promql_parser.Call):
        _call(node, needed, counting, usage)
    elif isinstance(node, promql_parser.BinaryExpr):
        _binary(node, needed, counting, usage)


def _aggregate(node: promql_parser.AggregateExpr, needed: Labels, counting: bool, usage: QueryUsage) -> None:
    op = str(node.op)
    if node.param is not None:
        _visit(node.param, EVERY, counting, usage)
    if op in _SELECTING:
        inner = needed
    elif op in _SUMMING:
        modifier = node.modifier
        if modifier is None:
            inner = Labels()
        else:
            every_but = modifier.type != promql_parser.AggModifierType.By
            inner = needed.restrict(frozenset(modifier.labels), every_but)
    else:
        inner = EVERY  # each input series counts on its own
    _visit(node.expr, inner, counting or op in _COUNTING, usage)


def _call(node: promql_parser.Call, needed: Labels, counting: bool, usage: QueryUsage) -> None:
    name = node.func.name
    if name == "label_replace":  # label_replace(v, dst, replacement, src, regex)
        needed = needed.union(Labels(_string_args(node, 3, 4)))
    elif name == "label_join":  # label_join(v, dst, separator, src...)
        needed = needed.union(Labels(_string_args(node, 3)))
    counting = counting or name in _COUNTING_CALLS
    for argument in node.args:
        _visit(argument, EVERY if counting else needed, counting, usage)


def _binary(node: promql_parser.BinaryExpr, needed: Labels, counting: bool, usage: QueryUsage) -> None:
    scalar_side = isinstance(node.lhs, promql_parser.NumberLiteral) or isinstance(node.rhs, promql_parser.NumberLiteral)
    modifier = node.modifier
    matching = modifier.matching if modifier is not None else None
    if scalar_side:
        inner = needed
    elif matching is not None and matching.type == promql_parser.LabelModifierType.Include:
        inner = needed.union(Labels(frozenset(matching.labels)))
    elif matching is not None:
        inner = Labels.all_but(frozenset(matching.labels))
    else:
        inner = EVERY  # matched on every label
    if modifier is not None and modifier.group_labels:
        inner = inner.union(Labels(frozenset(modifier.group_labels)))
    _visit(node.lhs, inner, counting, usage)
    _visit(node.rhs, inner, counting, usage)


def process_attributes_needed(queries: Iterable[str]) -> frozenset[str]:
    """The process.* resource attributes that `queries` need on the process metrics they read.

    A query that needs every label of a process metric (no aggregation at
    all) needs every known process attribute. What is not PromQL needs nothing:
    the experiment's own checks report it.
    """
    known = frozenset(a for a in names.ATTRIBUTES if a.startswith("process."))
    needed: set[str] = set()
    for query in queries:
        try:
            usage = analyze(query)
        except ValueError:
            continue
        for metric, use in usage.metrics.items():
            if not metric.startswith("process_"):
                continue
            labels = use.labels.resolve(frozenset(names.label_name(a) for a in known))
            if not use.labels.every:
                labels |= {label for label in use.labels.names if label.startswith("process_")}
            needed.update(names.otel_attribute(label).name for label in labels)
    return frozenset(a for a in needed if a.startswith("process."))
