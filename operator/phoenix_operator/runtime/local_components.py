"""The real collector and Prometheus as local processes on loopback ports.

Used by `phoenix run --local`, the operator's `--runtime local` and the tests,
so all three exercise the same start-up, health checks and configs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from phoenix_operator import binaries
from phoenix_operator.render import pipeline as render_pipeline
from phoenix_operator.runtime import process


def loopback_listen() -> render_pipeline.Listen:
    return render_pipeline.Listen(
        otlp_grpc=f"127.0.0.1:{process.free_port()}",
        otlp_http=f"127.0.0.1:{process.free_port()}",
        prometheus=f"127.0.0.1:{process.free_port()}",
        telemetry_host="127.0.0.1",
        telemetry_port=process.free_port(),
    )


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _http_ok(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(url, timeout=1.0).status_code == 200
    return False


@dataclasses.dataclass
class LocalCollector:
    """One otelcol-phoenix process running a rendered config."""

    name: str
    config_text: str
    listen: render_pipeline.Listen
    workdir: Path
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
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
        binary = binaries.require(binaries.OTELCOL)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / f"{self.name}.yaml"
        config.write_text(self.config_text, encoding="utf-8")
        self.process = process.ManagedProcess(
            f"collector {self.name}",
            [str(binary), f"--config=file:{config}"],
            self.workdir / f"{self.name}.log",
            env={"PATH": "/usr/bin:/bin", **self.env},
        )
        self.process.start()
        self.process.wait_healthy(
            lambda: (
                process.port_open(_port(self.listen.otlp_http)) and _http_ok(f"http://{self.telemetry_address}/metrics")
            ),
            timeout,
            "OTLP endpoint and telemetry",
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
FILE_SD_JOBS = {"export": True, "telemetry": False}  # job -> honor_labels


def prometheus_config(targets: Sequence[ScrapeTarget], scrape_interval: str, file_sd_dir: Path | None = None) -> str:
    lines = [
        "global:",
        f"  scrape_interval: {scrape_interval}",
        f"  evaluation_interval: {scrape_interval}",
        "scrape_configs:",
    ]
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
    process: process.ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        binary = binaries.require(binaries.PROMETHEUS)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(prometheus_config(self.targets, self.scrape_interval, self.file_sd_dir), encoding="utf-8")
        self.port = self.port or process.free_port()
        self.process = process.ManagedProcess(
            "prometheus",
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
                *self.extra_args,
            ],
            self.workdir / "prometheus.log",
        )
        self.process.start()
        self.process.wait_healthy(lambda: _http_ok(f"{self.url}/-/ready"), timeout, "readiness")

    def stop(self) -> None:
        if self.process:
            self.process.stop()
