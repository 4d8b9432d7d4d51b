"""The real collector and Prometheus as local processes on loopback ports.

Used by `phoenix run --local`, the operator's `--runtime local` and the tests,
so all three exercise the same start-up, health checks and configs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from phoenix_operator import binaries
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import process

READY = "Everything is ready"  # the collector's log line once all components started


def loopback_listen() -> render_pipeline.Listen:
    return render_pipeline.Listen(
        otlp_grpc=f"127.0.0.1:{process.free_port()}",
        otlp_http=f"127.0.0.1:{process.free_port()}",
        prometheus=f"127.0.0.1:{process.free_port()}",
        telemetry_host="127.0.0.1",
        telemetry_port=process.free_port(),
    )


def _http_ok(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=1.0).status_code == 200
    return False


@dataclasses.dataclass
class LocalCollector:
    """One otelcol-phoenix process running a config rendered for its loopback ports."""

    name: str
    render: Callable[[render_pipeline.Listen], str]
    workdir: Path
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    listen: render_pipeline.Listen = dataclasses.field(default_factory=loopback_listen)
    on_start: Callable[[process.ManagedProcess], None] | None = None
    process: process.ManagedProcess | None = None

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self.listen.otlp_http}"

    @property
    def metrics_address(self) -> str:
        return self.listen.prometheus

    @property
    def telemetry_address(self) -> str:
        return f"{self.listen.telemetry_host}:{self.listen.telemetry_port}"

    def start(self, timeout: float = 30.0) -> None:
        def attempt() -> None:
            if self.process is not None:  # the last attempt lost a port to another process
                self.listen = loopback_listen()
            self._start(timeout)

        process.on_free_ports(attempt)

    def restart(self, timeout: float = 30.0) -> None:
        """Start again on the same ports, which whoever sends to or scrapes this collector knows."""
        self._start(timeout)

    def _start(self, timeout: float) -> None:
        binary = binaries.require(binaries.OTELCOL)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / f"{self.name}.yaml"
        config.write_text(self.render(self.listen), encoding="utf-8")
        self.process = process.ManagedProcess(
            f"collector {self.name}",
            [str(binary), f"--config=file:{config}"],
            self.workdir / f"{self.name}.log",
            env={"PATH": "/usr/bin:/bin", **self.env},
            on_start=self.on_start,
        )
        self.process.start()
        started = self.process
        # An open OTLP port may belong to whoever took it first; the collector
        # says it is ready only once every receiver has bound its own.
        self.process.wait_healthy(
            lambda: READY in started.output() and _http_ok(f"http://{self.telemetry_address}/metrics"),
            timeout,
            "readiness and telemetry",
        )

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclasses.dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Exported series already carry phoenix_* labels; honouring them avoids exported_* copies.
    honor_labels: bool = False


# Jobs whose targets come from files the runtime rewrites as collectors come and go.
FILE_SD_JOBS = {"export": True, "telemetry": False, "loadsim": False}  # job -> honor_labels


def prometheus_config(
    targets: Sequence[ScrapeTarget],
    scrape_interval: str,
    file_sd_dir: Path | None = None,
    rule_files: Sequence[Path] = (),
) -> str:
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
    ]
    if rule_files:
        lines += ["rule_files:", *(f"  - {str(path)!r}" for path in rule_files)]
    lines.append("scrape_configs:")
    if file_sd_dir is not None:
        for job, honor_labels in FILE_SD_JOBS.items():
            lines += [
                f"  - job_name: {job!r}",
                f"    honor_labels: {str(honor_labels).lower()}",
                "    file_sd_configs:",
                f"      - files: [{str(file_sd_dir / f'{job}.json')!r}]",
                "        refresh_interval: 2s",
            ]
    for target in targets:
        lines += [
            f"  - job_name: {target.job!r}",
            f"    honor_labels: {str(target.honor_labels).lower()}",
            "    static_configs:",
            f"      - targets: [{target.address!r}]",
        ]
        if target.labels:
            lines.append("        labels:")
            lines += [f"          {key}: {value!r}" for key, value in target.labels.items()]
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class LocalPrometheus:
    """A Prometheus server scraping the given targets into a fresh TSDB."""

    targets: Sequence[ScrapeTarget]
    workdir: Path
    scrape_interval: str = "5s"
    port: int = 0
    extra_args: Sequence[str] = ()
    file_sd_dir: Path | None = None
    retention: str = "1d"
    rule_files: Sequence[Path] = ()
    on_start: Callable[[process.ManagedProcess], None] | None = None
    process: process.ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Serve on `port`, or on a free port when it is 0."""
        if self.port:
            self._start(self.port, timeout)
        else:
            process.on_free_ports(lambda: self._start(process.free_port(), timeout))

    def _start(self, port: int, timeout: float) -> None:
        binary = binaries.require(binaries.PROMETHEUS)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            prometheus_config(self.targets, self.scrape_interval, self.file_sd_dir, self.rule_files), encoding="utf-8"
        )
        self.port = port
        self.process = process.ManagedProcess(
            "prometheus",
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--storage.tsdb.retention.time={self.retention}",
                *self.extra_args,
            ],
            self.workdir / "prometheus.log",
            on_start=self.on_start,
        )
        self.process.start()
        self.process.wait_healthy(lambda: _http_ok(f"{self.url}/-/ready"), timeout, "readiness")

    def stop(self) -> None:
        if self.process:
            self.process.stop()
