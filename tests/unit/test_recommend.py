"""`phoenix recommend`'s pure parts: what a query needs, the sources read, the OTel names behind Prometheus ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoenix_analysis import contract
from phoenix_operator.loadsim import fleet
from phoenix_operator.models import loadsim
from phoenix_operator.recommend import analysis, estimate, names, sources, usage

FIXTURES = Path(__file__).resolve().parents[1] / "recommend"
EVERY = None  # every label a series has


@pytest.mark.parametrize(
    ("query", "metric", "labels", "counts"),
    [
        ("sum by (host_name, state) (rate(cpu[5m]))", "cpu", {"host_name", "state"}, False),
        ("topk(5, sum by (exe) (rate(cpu[5m])))", "cpu", {"exe"}, False),
        ("sum(rate(cpu{host_name='a'}[5m]))", "cpu", {"host_name"}, False),
        ("sum by (a) (sum by (a, b) (cpu))", "cpu", {"a"}, False),
        ("sum by (a) (sum by (b) (cpu))", "cpu", set(), False),
        ("avg by (a) (cpu)", "cpu", EVERY, False),
        ("max(cpu)", "cpu", EVERY, False),
        ("count by (a) (cpu)", "cpu", EVERY, True),
        ("absent(cpu{job='x'})", "cpu", EVERY, True),
        ("rate(cpu[5m])", "cpu", EVERY, False),
        ("cpu > 3", "cpu", EVERY, False),
        ("sum by (a) (cpu) / on (a) group_left sum by (a) (mem)", "mem", {"a"}, False),
        ("sum by (a) (cpu / on (a, b) group_left (c) mem)", "mem", {"a", "b", "c"}, False),
        ("sum by (a) (label_replace(cpu, 'x', '$1', 'pid', '(.*)'))", "cpu", {"a", "pid"}, False),
        ("sum by (a) (label_join(cpu, 'x', ',', 'b', 'c'))", "cpu", {"a", "b", "c"}, False),
        ('sum by (b) ({__name__="cpu", a="x"} offset 5m)', "cpu", {"a", "b"}, False),
        ("max_over_time(sum by (a) (cpu)[10m:1m])", "cpu", {"a"}, False),
    ],
)
def test_a_query_needs_exactly_the_labels_that_can_change_its_answer(
    query: str, metric: str, labels: set[str] | None, counts: bool
) -> None:
    use = usage.analyze(query).metrics[metric]
    present = frozenset({"a", "b", "c", "pid", "host_name", "state", "exe", "job"})
    assert use.labels.resolve(present) == (present if labels is EVERY else labels)
    assert use.counts_series is counts


def test_sum_without_needs_every_label_but_those_it_sums_away() -> None:
    use = usage.analyze("sum without (pid, cmd) (rate(cpu{host='a'}[5m]))").metrics["cpu"]
    assert use.labels.resolve(frozenset({"pid", "cmd", "host", "exe"})) == {"host", "exe"}


def test_grafana_variables_become_values_that_parse() -> None:
    expr = 'sum by (exe) (rate(cpu{host=~"$host", env="${env}"}[$__rate_interval])) / $__range_s + x[$window]'
    assert sources.grafana_to_promql(expr) == ('sum by (exe) (rate(cpu{host=~".*", env=~".*"}[1m])) / 60 + x[1m]')


def test_dashboards_are_read_through_rows_library_panels_and_variables() -> None:
    corpus = sources.Corpus()
    sources.read_dashboards(FIXTURES / "dashboards", corpus)
    panels = sorted(q.where.rsplit(": ", 1)[1] for q in corpus.queries)
    assert panels == [
        "panel CPU by executable",
        "panel Disk IO by owner",  # the library panel, from the file's __elements
        "panel Memory by host",  # inside a collapsed row
        "panel Top 5 executables by CPU",  # an old-style row, in a dashboard export wrapper
    ]
    assert [(u.metric, u.label) for u in corpus.label_uses] == [("process_cpu_time_seconds_total", "host_name")]
    assert corpus.problems == [] and corpus.files == 2


def test_unreadable_files_are_one_line_each_and_the_rest_is_read(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"panels": [', encoding="utf-8")
    (tmp_path / "rules.yaml").write_text("groups: [\n", encoding="utf-8")
    (tmp_path / "log.json").write_text('{"params": {"query": "up"}}\nnot json\n', encoding="utf-8")
    corpus = sources.Corpus()
    for dashboard in (tmp_path / "broken.json", FIXTURES / "dashboards" / "processes.json"):
        sources.read_dashboards(dashboard, corpus)
    sources.read_rules(tmp_path / "rules.yaml", corpus)
    sources.read_query_log(tmp_path / "log.json", corpus)
    assert len(corpus.problems) == 3 and all("\n" not in p for p in corpus.problems)
    assert corpus.problems[0].startswith(f"{tmp_path / 'broken.json'}: not a Grafana dashboard: ")
    assert corpus.problems[1].startswith(f"{tmp_path / 'rules.yaml'}: not a rule file: ")
    assert corpus.problems[2] == f"{tmp_path / 'log.json'}: 1 lines are not query log entries and were skipped"
    assert len(corpus.queries) == 4  # the good dashboard's three panels, and the logged query


def test_recording_rules_count_only_when_their_output_is_used() -> None:
    corpus = sources.Corpus()
    sources.read_dashboards(FIXTURES / "dashboards", corpus)
    sources.read_rules(FIXTURES / "rules", corpus)
    corpus.queries.append(sources.Query("sum by (x) (not promql", "query-log", "log"))
    found = analysis.needs(corpus)
    needed = {
        metric: need.labels.resolve(frozenset({"host_name", "state", "process_executable_name", "process_owner",
                                               "direction", "process_pid"}))
        for metric, need in found.metrics.items()
    }  # fmt: skip
    assert needed == {
        # grouped by the panels, filtered by the variable, and grouped by host and state by a rule an alert reads
        "process_cpu_time_seconds_total": {"process_executable_name", "host_name", "state"},
        "process_memory_usage_bytes": {"host_name"},
        "process_disk_io_bytes_total": {"process_owner", "direction"},
        "host:process_cpu:rate5m": {"host_name", "state"},
    }  # process_memory_virtual_bytes is read only by a rule whose output nothing reads
    assert found.skipped == ["skipped log: not PromQL: " + found.skipped[0].split("not PromQL: ")[1]]
    queries = analysis.critical_queries(found, top=10)
    # the alert reading the rule's output is left out: a pipeline's own series cannot answer it
    assert [q["name"] for q in queries] == [
        "hostmemoryhigh",
        "memory-by-host",
        "cpu-by-executable",
        "disk-io-by-owner",
        "top-5-executables-by-cpu",
    ]
    assert queries[0]["query"] == "sum by (host_name)(process_memory_usage_bytes{})"  # without its threshold


@pytest.mark.parametrize(
    ("otel", "unit", "monotonic", "prometheus"),
    [
        ("process.cpu.time", "s", True, "process_cpu_time_seconds_total"),
        ("process.cpu.utilization", "1", False, "process_cpu_utilization_ratio"),
        ("process.memory.usage", "By", False, "process_memory_usage_bytes"),
        ("process.memory.virtual", "By", False, "process_memory_virtual_bytes"),
        ("process.disk.io", "By", True, "process_disk_io_bytes_total"),
        ("process.disk.operations", "{operations}", True, "process_disk_operations_total"),
        ("process.threads", "{threads}", False, "process_threads"),
        ("process.open_file_descriptors", "{count}", False, "process_open_file_descriptors"),
        ("process.context_switches", "{count}", True, "process_context_switches_total"),
        ("process.uptime", "s", False, "process_uptime_seconds"),
    ],
)
def test_the_process_conventions_map_both_ways(otel: str, unit: str, monotonic: bool, prometheus: str) -> None:
    assert names.metric_name(otel, unit, monotonic) == prometheus
    assert names.otel_metric(prometheus) == names.Translated(otel, guessed=False)


def test_attributes_map_both_ways_and_unknown_names_are_marked_guessed() -> None:
    for attribute in ("host.name", "process.pid", "process.executable.name", "process.command_line"):
        assert names.otel_attribute(names.label_name(attribute)) == names.Translated(attribute, guessed=False)
    assert names.otel_metric("http_server_duration_milliseconds_total") == names.Translated(
        "http.server.duration", guessed=True
    )
    assert names.otel_attribute("http_route") == names.Translated("http.route", guessed=True)


def test_the_offline_estimate_applies_each_change_to_the_profiles_population() -> None:
    spec = loadsim.LoadProfileSpec(profile="realistic", hosts=2, processes_per_host=50, duration="1m", seed=4)
    count = estimate.from_profile(spec)
    assert count(estimate.Changes()) == 2 * 50 * fleet.POINTS_PER_PROCESS
    # pids are unique on a host, so removing the pid alone leaves the parent pid and command line apart
    drop = estimate.Changes(drop_metrics=frozenset({"process.memory.virtual"}))
    assert count(drop) == 2 * 50 * (fleet.POINTS_PER_PROCESS - 1)
    every_detail = frozenset({"process.pid", "process.parent_pid", "process.command_line", "process.command"})
    per_executable = count(estimate.Changes(aggregate_away=every_detail))
    kept = count(estimate.Changes(aggregate_away=every_detail, keep_executables=frozenset({"java"})))
    assert per_executable < kept < count(estimate.Changes())
    result = estimate.estimate(
        estimate.Changes(), estimate.Changes(drop.drop_metrics, every_detail), count, 6.0, contract.CostModel(), "x"
    )
    assert result.baseline.datapoints_per_minute == result.baseline.series * 6.0
    assert result.monthly_savings_usd > 0
    shares = {s.change: s.saved_series for s in result.shares}
    assert shares["dropping process.memory.virtual"] == count(estimate.Changes(aggregate_away=every_detail)) - (
        result.candidate.series
    )


def test_the_process_attributes_critical_queries_need_are_what_they_group_and_filter_by() -> None:
    needed = usage.process_attributes_needed(
        [
            "sum by (process_executable_name) (rate(process_cpu_time_seconds_total[1m]))",
            'sum(process_memory_usage_bytes{process_owner="postgres"})',
            "sum by (host_name) (process_disk_io_bytes_total)",
            "not promql (",
        ]
    )
    assert needed == {"process.executable.name", "process.owner"}
    every = usage.process_attributes_needed(["process_threads > 5"])
    assert {"process.pid", "process.command_line", "process.executable.name"} <= every
