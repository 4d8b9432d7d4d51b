"""Collectors and loads as processes on this machine: the operator's `--runtime local` and `phoenix run --local`.

The objects live where the driver keeps them (the API server, or memory);
only where the collectors and loads run differs from a cluster. One local
Prometheus scrapes every collector and load through file service discovery,
labelled the way the measurement layer expects, so the driver measures
exactly as it would in a cluster.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from phoenix_operator import labels
from phoenix_operator.models import common, kinds
from phoenix_operator.reconcile import loadsim as reconcile_loadsim
from phoenix_operator.reconcile import pipeline as reconcile_pipeline
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import base as runtime_base
from phoenix_operator.runtime import local_components, process

# Once per batch of a load sent every 2 s, like the quickstart's: an exporter
# keeps only a series' newest point, so now and then a batch replaces the one
# before it unscraped on one variant (README, "A known limit"). Scraping every
# second timed out a fifth of the scrapes of the quickstart's 7,000-series
# baseline on a busy 2-core machine, and each timeout is a lost batch.
SCRAPE_SECONDS = 2
# The operator's runtime serves every experiment from one Prometheus, so its
# lookback is set once, long enough for loads sent every 5 s or more often.
SHARED_LOAD_INTERVAL_SECONDS = 5.0
REGISTRY = "processes.json"
# The job name a cluster's ServiceMonitor gives the operator (components/prometheus).
OPERATOR_JOB = "phoenix-operator"


def _reap(registry: Path) -> None:
    """Kill the process groups an earlier operator on this workdir left behind.

    A killed operator cannot stop its children, and a restarted one starts new
    collectors, so the old ones would linger. A pid is only killed while its
    command line is still the recorded one, never a recycled pid.
    """
    if not registry.exists():
        return
    for pid, argv0 in json.loads(registry.read_text(encoding="utf-8")).items():
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            if cmdline == argv0:
                os.killpg(int(pid), signal.SIGKILL)
    registry.unlink()


def _key(obj: kinds.PhoenixProcessPipeline | kinds.LoadSim) -> str:
    return f"{obj.metadata.namespace or 'default'}.{obj.metadata.name}"


@dataclass
class _Running:
    config_hash: str
    collector: local_components.LocalCollector
    series_labels: dict[str, str]
    failure: str | None = None


def lookback_seconds(load_interval_seconds: float) -> int:
    """How long a sample stays current in instant queries.

    The collectors send the datapoints' own timestamps, so both variants store
    identical sample times whatever their scrape phase; Prometheus then writes
    no staleness markers, and this lookback is what lets the series of a
    process that ended disappear, instead of lingering for the default 5m.
    """
    return math.ceil(3 * max(SCRAPE_SECONDS, load_interval_seconds))


@dataclass
class LocalRuntime:
    workdir: Path
    prometheus: local_components.LocalPrometheus
    collectors: dict[str, _Running] = field(default_factory=dict)
    loads: dict[str, process.ManagedProcess] = field(default_factory=dict)
    load_metrics: dict[str, str] = field(default_factory=dict)  # where each load serves its counters
    lock: threading.Lock = field(default_factory=threading.Lock)
    load_started: dict[str, str] = field(default_factory=dict)
    started: dict[str, str] = field(default_factory=dict)  # pid -> argv[0], for the next operator's _reap
    # where an exporter header's Secret is read from: the operator's API server, or run --local's store
    secrets: runtime_base.Store | None = None
    stopping: bool = False

    @classmethod
    def start(
        cls,
        workdir: str | Path | None,
        operator_metrics: str | None = None,
        load_interval_seconds: float = SHARED_LOAD_INTERVAL_SECONDS,
        prometheus_port: int = 0,
        secrets: runtime_base.Store | None = None,
    ) -> LocalRuntime:
        """Start the runtime's Prometheus; it also scrapes `operator_metrics` (host:port), as in a cluster.

        Its lookback suits loads sent every `load_interval_seconds`.
        """
        root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="phoenix-operator-"))
        _reap(root / REGISTRY)
        targets = root / "targets"
        targets.mkdir(parents=True, exist_ok=True)
        for job in local_components.FILE_SD_JOBS:
            (targets / f"{job}.json").write_text("[]", encoding="utf-8")
        operator = [local_components.ScrapeTarget(OPERATOR_JOB, operator_metrics)] if operator_metrics else []
        server = local_components.LocalPrometheus(
            operator,
            root / "prometheus",
            f"{SCRAPE_SECONDS}s",
            prometheus_port,
            extra_args=[f"--query.lookback-delta={lookback_seconds(load_interval_seconds)}s"],
            file_sd_dir=targets,
        )
        runtime = cls(root, server, secrets=secrets)
        server.on_start = runtime._record
        try:
            server.start()
        except process.StartupError:
            server.stop()
            raise
        return runtime

    def _record(self, started: process.ManagedProcess) -> None:
        """Note a child in the registry the next operator on this workdir reaps, as soon as it exists."""
        if started.pid is None:
            return
        self.started[str(started.pid)] = started.argv[0]
        (self.workdir / REGISTRY).write_text(json.dumps(self.started), encoding="utf-8")

    @property
    def prometheus_url(self) -> str:
        return self.prometheus.url

    def _write_targets(self) -> None:
        assert self.prometheus.file_sd_dir is not None
        export, telemetry = [], []
        for running in self.collectors.values():
            collector = running.collector
            export.append(
                {
                    "targets": [collector.metrics_address],
                    "labels": {**running.series_labels, labels.SCRAPE: labels.EXPORT},
                }
            )
            telemetry.append(
                {
                    "targets": [collector.telemetry_address],
                    "labels": {**running.series_labels, labels.SCRAPE: labels.TELEMETRY},
                }
            )
        loads = [{"targets": [address], "labels": {"loadsim": key}} for key, address in self.load_metrics.items()]
        for job, entries in (("export", export), ("telemetry", telemetry), ("loadsim", loads)):
            path = self.prometheus.file_sd_dir / f"{job}.json"
            staged = path.with_suffix(".tmp")
            staged.write_text(json.dumps(entries), encoding="utf-8")
            staged.replace(path)  # Prometheus must never read a half-written file

    def apply_pipeline(
        self, obj: kinds.PhoenixProcessPipeline, rendered: render_pipeline.RenderedConfig
    ) -> reconcile_pipeline.Observed:
        key = _key(obj)
        with self.lock:
            running = self.collectors.get(key)
            if (
                running
                and running.config_hash == rendered.config_hash
                and running.collector.process
                and running.collector.process.running()
            ):
                return self._observed(running)
            if running:
                running.collector.stop()
            experiment, variant = reconcile_pipeline.identity(obj)

            def config(listen: render_pipeline.Listen) -> str:
                return render_pipeline.render(
                    obj.spec,
                    experiment=experiment,
                    variant=variant,
                    listen=listen,
                    adaptation=rendered.adaptation,
                    mirrors=rendered.mirrors,
                ).text

            env = rendered.runtime_env
            unreadable: str | None = None
            try:
                # as a pod's secretKeyRef would: the values reach the process, never a file or a log
                env |= {s.env_var: self._secret(obj, s.secret) for s in rendered.secret_env}
            except runtime_base.SecretUnreadable as error:
                unreadable = str(error)
            collector = local_components.LocalCollector(
                obj.metadata.name, config, self.workdir / key, env, on_start=self._record
            )
            # a new config keeps the ports, as a pod keeps its Service: the load's endpoints stay valid
            same_ports = running is not None and running.failure is None
            if running is not None and same_ports:
                collector.listen = running.collector.listen
            running = _Running(rendered.config_hash, collector, labels.of_variant(experiment, variant))
            self.collectors[key] = running
            if unreadable is not None:
                running.failure = f"collector cannot start: {unreadable}"
                return self._observed(running)
            try:
                collector.restart() if same_ports else collector.start()
            except process.StartupError as error:
                collector.stop()
                running.failure = f"collector failed to start: {error}"
            self._write_targets()
            return self._observed(running)

    def _secret(self, obj: kinds.PhoenixProcessPipeline, ref: common.SecretKeyRef) -> str:
        if self.secrets is None:
            raise runtime_base.SecretUnreadable(f"secret {ref.name}: this runtime reads no Secrets")
        return self.secrets.secret_value(obj.metadata.namespace or "default", ref.name, ref.key)

    @staticmethod
    def _observed(running: _Running) -> reconcile_pipeline.Observed:
        collector = running.collector
        alive = collector.process is not None and collector.process.running()
        return reconcile_pipeline.Observed(
            1,
            1 if alive else 0,
            {
                "otlpGrpc": collector.listen.otlp_grpc,
                "otlpHttp": collector.otlp_http_url,
                "metrics": f"http://{collector.metrics_address}/metrics",
            },
            running.config_hash,
            running.failure,
        )

    def _keep_prometheus(self) -> None:
        """A Prometheus that exited is started again on its port with its data, as a StatefulSet's pod would be.

        Until it serves again, measurements find it unreachable; what it had
        scraped is in its TSDB, so the gap is only the time it was down.
        """
        server = self.prometheus
        if self.stopping or server.process is None or server.process.running():
            return
        with contextlib.suppress(process.StartupError):  # still down: measurements say so, and the next look retries
            server.start()

    def observe_pipeline(self, obj: kinds.PhoenixProcessPipeline) -> reconcile_pipeline.Observed | None:
        with self.lock:
            self._keep_prometheus()
            running = self.collectors.get(_key(obj))
            if running is None:
                return reconcile_pipeline.Observed(1, 0, {}, None)
            collector = running.collector
            if not self.stopping and running.failure is None and collector.process and not collector.process.running():
                # a collector that exited is started again on its ports, as a pod's container restarts
                try:
                    collector.restart()
                except process.StartupError as error:
                    collector.stop()
                    running.failure = f"collector failed to restart: {error}"
            return self._observed(running)

    def delete_pipeline(self, obj: kinds.PhoenixProcessPipeline) -> None:
        with self.lock:
            running = self.collectors.pop(_key(obj), None)
            if running:
                running.collector.stop()
                self._write_targets()

    def apply_load(self, obj: kinds.LoadSim, targets: list[str]) -> reconcile_loadsim.Observed:
        key = _key(obj)
        with self.lock:
            load = self.loads.get(key)
            if load is None:
                served = {running.collector.otlp_http_url for running in self.collectors.values()}
                stale = [t for t in targets if t.startswith("http://127.0.0.1:") and t not in served]
                if stale:
                    # endpoints a previous operator's collectors had; this one's are not up yet
                    raise reconcile_loadsim.TargetsNotReady(f"no local collector serves {', '.join(stale)} yet")
                summary = self._summary_file(key)
                summary.unlink(missing_ok=True)  # a previous operator's run of the same name
                metrics = ("127.0.0.1", process.free_port())
                argv = [
                    sys.executable,
                    "-m",
                    "phoenix_operator",
                    *reconcile_loadsim.arguments(obj.spec, targets, summary_file=str(summary), metrics=metrics),
                ]
                load = process.ManagedProcess(
                    f"loadsim {key}", argv, self.workdir / f"{key}.loadsim.log", on_start=self._record
                )
                self.loads[key] = load
                self.load_metrics[key] = f"{metrics[0]}:{metrics[1]}"
                self._write_targets()
                load.start()
                self.load_started[key] = datetime.now(UTC).isoformat()
            return self._load_observed(key, load)

    def observe_load(self, obj: kinds.LoadSim) -> reconcile_loadsim.Observed | None:
        key = _key(obj)
        with self.lock:
            load = self.loads.get(key)
            return None if load is None else self._load_observed(key, load)

    def _load_observed(self, key: str, load: process.ManagedProcess) -> reconcile_loadsim.Observed:
        code = None if load.running() else load.returncode
        summary = self._summary_file(key)
        return reconcile_loadsim.Observed(
            started_at=self.load_started[key],
            active=code is None,
            succeeded=code == 0,
            failed=code not in (None, 0),
            message=f"LoadSim exited with {code}: {load.tail()}" if code not in (None, 0) else "",
            delivery=(
                reconcile_loadsim.delivery(summary.read_text(encoding="utf-8"))
                if code is not None and summary.is_file()
                else None
            ),
        )

    def _summary_file(self, key: str) -> Path:
        return self.workdir / f"{key}.loadsim.json"

    def delete_load(self, obj: kinds.LoadSim) -> None:
        with self.lock:
            load = self.loads.pop(_key(obj), None)
            if self.load_metrics.pop(_key(obj), None):
                self._write_targets()
        if load:
            load.stop()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            for load in self.loads.values():
                load.stop()
            for running in self.collectors.values():
                running.collector.stop()
        self.prometheus.stop()
