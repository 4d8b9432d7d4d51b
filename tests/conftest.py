"""Fixtures that start the real components: control plane, collector, Prometheus.

Each binds to 127.0.0.1 on free ports, waits for its health check with a
deadline, and stops its whole process group on teardown. A missing binary
fails the test with the name of the binary and `make tools`; it never skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from phoenix_operator import binaries
from phoenix_operator.runtime import local_components
from tests.harness import controlplane
from tests.harness import operator as harness


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Workers take whole files in this order. Within each kind the files marked `slow` come first, so a long
    one never starts last and leaves the other workers idle; files of real experiments alternate with the
    rest, so a worker that finishes one usually takes a file that needs no experiment slot. The experiment
    files that hold every slot lead, before any other holds one they would wait for. Then come those of several
    tests: xdist hands a worker its next file once two or fewer of its tests are left, so a file queues behind
    such a file's last test, and early on that wait does not leave the last minutes to one worker."""
    files: dict[Path, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.path, []).append(item)

    def marker(path: Path, name: str) -> pytest.Mark | None:
        return files[path][0].get_closest_marker(name)

    experiments = sorted(
        (path for path in files if marker(path, "experiment")),
        key=lambda path: (
            not _holds_every_slot(marker(path, "experiment")),
            len(files[path]) == 1,
            marker(path, "slow") is None,
        ),
    )
    others = sorted(
        (path for path in files if not marker(path, "experiment")), key=lambda path: marker(path, "slow") is None
    )
    alternating = [path for pair in itertools.zip_longest(experiments, others) for path in pair if path is not None]
    items[:] = [item for path in alternating for item in files[path]]


def _holds_every_slot(marker: pytest.Mark | None) -> bool:
    return marker is not None and bool(marker.kwargs.get("every_slot", False))


# One real experiment (two collectors, a load, a Prometheus and its driver) keeps about a third of a core busy,
# mostly waiting for its samples. Many at once on two cores gap their scrapes and slip their clocks, and the
# verdicts their tests hold them to turn Inconclusive (CONTRIBUTING.md gives the runs).
EXPERIMENT_SLOTS = 3


@pytest.fixture(scope="module", autouse=True)
def experiment_slots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A file marked `experiment` runs while it holds one of the run's slots, which every xdist worker shares;
    one marked `experiment(every_slot=True)` runs several experiments at once and holds them all."""
    marker = request.node.get_closest_marker("experiment")
    if marker is None:
        yield
        return
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # workers' base dirs are siblings
    locks = [shared / f"experiment-slot-{index}.lock" for index in range(EXPERIMENT_SLOTS)]
    with contextlib.ExitStack() as held:
        if _holds_every_slot(marker):
            for lock in locks:  # in order, waiting at each, so files that want one slot cannot starve this one
                fcntl.flock(held.enter_context(lock.open("a")), fcntl.LOCK_EX)
        else:
            held.enter_context(_any_one_of(locks))
        yield  # closing a lock's file releases it, and a worker that dies releases it too


@contextlib.contextmanager
def _any_one_of(locks: list[Path]) -> Iterator[None]:
    while True:
        for path in locks:
            with path.open("a") as lock:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                yield
                return
        time.sleep(1)


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
