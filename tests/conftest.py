"""Fixtures that start the real components: control plane, collector, Prometheus.

Each binds to 127.0.0.1 on free ports, waits for its health check with a
deadline, and stops its whole process group on teardown. A missing binary
fails the test with the name of the binary and `make tools`; it never skips.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

from phoenix_operator import binaries
from phoenix_operator.runtime import local_components
from tests.harness import controlplane
from tests.harness import operator as harness


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow files first: `make test`'s workers take whole files in this order, and a long one started last
    would leave the other workers idle while it runs."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


class _WholeFilesButUnitTests(LoadFileScheduling):
    """Whole files, except that unit tests go out one by one.

    Integration and e2e files share components in module fixtures, so a file runs in one worker. Unit
    tests share nothing; sent out one by one they spread the last minutes' work, the calibration file's
    four minutes among them, over every worker instead of leaving one worker to run that file alone."""

    def _split_scope(self, nodeid: str) -> str:
        return nodeid if nodeid.startswith("tests/unit/") else super()._split_scope(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadFileScheduling | None:
    return _WholeFilesButUnitTests(config, log) if config.getoption("dist") == "loadfile" else None


def _require(binary: binaries.Binary) -> Path:
    try:
        return binaries.require(binary)
    except binaries.BinaryNotFound as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    for binary in (binaries.ETCD, binaries.KUBE_APISERVER, binaries.KUBE_SCHEDULER, binaries.KUBE_CONTROLLER_MANAGER,
                   binaries.KWOK):  # fmt: skip
        _require(binary)
    with controlplane.running(tmp_path_factory.mktemp("control-plane")) as plane:
        plane.install_crds()
        yield plane


@pytest.fixture
def namespace(control_plane: controlplane.ControlPlane) -> str:
    """A fresh namespace in the session's control plane, so tests sharing it never see each other's objects."""
    return harness.namespace(control_plane)


StartCollector = Callable[..., local_components.LocalCollector]


@pytest.fixture
def otelcol(tmp_path: Path) -> Iterator[StartCollector]:
    """Start otelcol-phoenix with a config rendered for loopback ports.

    Call it with a function from `Listen` to config text, so the config can
    name the ports the fixture picked.
    """
    _require(binaries.OTELCOL)
    started: list[local_components.LocalCollector] = []

    def start(
        render: Callable[..., str], name: str = "collector", env: Mapping[str, str] | None = None
    ) -> local_components.LocalCollector:
        collector = local_components.LocalCollector(name, render, tmp_path / name, env or {})
        started.append(collector)
        collector.start()
        return collector

    yield start
    for collector in started:
        collector.stop()


StartPrometheus = Callable[..., local_components.LocalPrometheus]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[StartPrometheus]:
    _require(binaries.PROMETHEUS)
    started: list[local_components.LocalPrometheus] = []

    def start(
        targets: Sequence[local_components.ScrapeTarget], scrape_interval: str = "1s", rule_files: Sequence[Path] = ()
    ) -> local_components.LocalPrometheus:
        server = local_components.LocalPrometheus(
            targets, tmp_path / f"prometheus-{len(started)}", scrape_interval, rule_files=rule_files
        )
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def promtool_backfill(
    tmp_path: Path,
) -> Iterator[Callable[[str], local_components.LocalPrometheus]]:
    """Write OpenMetrics text into a real TSDB with promtool, then serve it with Prometheus."""
    promtool = _require(binaries.PROMTOOL)
    _require(binaries.PROMETHEUS)
    started: list[local_components.LocalPrometheus] = []

    def backfill(openmetrics_text: str) -> local_components.LocalPrometheus:
        source = tmp_path / "backfill.om"
        source.write_text(openmetrics_text, encoding="utf-8")
        data = tmp_path / "backfill-prometheus" / "data"
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        server = local_components.LocalPrometheus([], tmp_path / "backfill-prometheus", "15s")
        started.append(server)
        server.start()
        return server

    yield backfill
    for server in started:
        server.stop()
