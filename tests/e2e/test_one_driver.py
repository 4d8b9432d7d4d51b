"""One experiment driver: `phoenix run --local` and the operator reach the same end.

The same scenarios run through `phoenix run --local` (objects in memory) and
through the operator with `--runtime local` (objects in the real API server),
on real collectors, LoadSim and Prometheus. Both drivers step the
same controllers and state machine, so each scenario must end in the same
phase, with the same Succeeded reason, decision and reasons (numbers aside,
since two runs measure slightly different samples).

The scenarios are the quickstart made small: 200 processes, three minutes at
most. The two fault injections act on the real components: the run's or
the operator's Prometheus is paused (SIGSTOP)
for longer than a query's timeout and resumed, which loses samples, so the
verdict usually stays Inconclusive (one pause lost too few to stop a Promote,
so the test compares the phase and that measuring paused and resumed); and an
abort is a Ctrl-C or `spec.abort`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import controlplane
from tests.harness import operator as harness

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.experiment(every_slot=True)]
QUICKSTART = controlplane.REPO / "examples" / "quickstart" / "experiment.yaml"
MEASURE_STEP = ("--measure-step", "2s")
# Longer than a query's 10 s timeout plus an analysis interval, so some measurement
# fails; and longer than the 6 s lookback, so the samples of the pause are lost
# and the verdict cannot be decided (it fails closed).
PAUSE_SECONDS = 25
TIMEOUT = 330


def small_quickstart() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(QUICKSTART.read_text())
    spec = manifest["spec"]
    spec["load"]["loadSim"].update(hosts=5, processesPerHost=40, churnPerMinute=0)
    # analysis begins once both pipelines settle, at most 70 s in
    spec.update(duration="3m", warmup="70s")
    # small loads measure CPU and query totals noisily: looser objectives decide sooner
    spec["analysis"]["objectives"].update(maxQueryError=0.2, maxCpuIncrease=1.0, maxMemoryIncrease=1.0)
    # a batch late by a few seconds on a busy machine must not expire its series
    for variant in ("baseline", "candidate"):
        spec[variant]["parameters"]["metricExpiration"] = "20s"
    return manifest


def _trap(spec: dict[str, Any]) -> None:
    spec["candidate"]["parameters"]["aggregateAwayAttributes"] += ["process.executable.name", "process.executable.path"]


def _costly(spec: dict[str, Any]) -> None:
    """A/A on series, so only the guardrail can decide: the candidate's batch timer fires every millisecond."""
    spec["candidate"] = {
        "template": "baseline",
        "parameters": {**spec["baseline"]["parameters"], "batchTimeout": "1ms"},
    }
    spec["analysis"]["criticalQueries"] = []
    spec["analysis"]["objectives"].update(minSeriesReduction=0.0, maxCpuIncrease=0.0)
    spec.update(duration="4m")


def _outlasts_a_pause(spec: dict[str, Any]) -> None:
    """Samples lost to the pause usually keep it from a verdict, so it runs to its end: long enough for the
    warmup, the pause and measuring again after it, and no longer."""
    spec.update(duration="130s")


def _drops_everything(spec: dict[str, Any]) -> None:
    metrics = ["process.cpu.time", "process.memory.usage", "process.memory.virtual", "process.disk.io"]
    spec["candidate"]["parameters"]["dropMetrics"] = metrics
    spec.update(duration="90s")


@dataclass(frozen=True)
class Scenario:
    edit: Callable[[dict[str, Any]], None]
    phase: str
    # the Succeeded condition's reason and the decision; None where the samples lost
    # to a fault decide them, which differs from run to run
    reason: str | None
    decision: str | None
    fault: str | None = None  # "abort" or "pause-prometheus", once measuring has begun
    # Collector CPU drifts slowly, and the engine rightly counts a persistent
    # series as few independent samples: a driver may end before its interval
    # clears the limit. Such a driver ends Inconclusive with the guardrail
    # undetermined, never otherwise; at least one of the two decides. A Promote
    # needs CPU shown within its guardrail too, and the trend's projection makes
    # it wait for more samples, so the promote scenario may stay undecided as well.
    may_stay_undecided: bool = False


SCENARIOS = {
    "promote": Scenario(lambda spec: None, "Completed", "Promote", "Promote", may_stay_undecided=True),
    "trap": Scenario(_trap, "Completed", "Reject", "Reject"),
    "guardrail": Scenario(_costly, "Failed", "GuardrailBreached", "Reject", may_stay_undecided=True),
    "no-data": Scenario(_drops_everything, "Completed", "Inconclusive", "Inconclusive"),
    "prometheus-pause": Scenario(_outlasts_a_pause, "Completed", None, None, "pause-prometheus"),
    "abort": Scenario(lambda spec: None, "Aborted", "Aborted", None, "abort"),
}


def _manifest(name: str) -> dict[str, Any]:
    manifest = copy.deepcopy(small_quickstart())
    manifest["metadata"] = {"name": name}
    SCENARIOS[name].edit(manifest["spec"])
    return manifest


def _numbers_aside(text: str) -> str:
    return re.sub(r"-?\$?\d[\d,]*(\.\d+)?%?", "N", text)


@dataclass
class Ending:
    phase: str | None = None
    reason: str | None = None
    decision: str | None = None
    reasons: list[str] = field(default_factory=list)
    saw_unreachable: bool = False
    # measured again after Prometheus was unreachable
    recovered: bool = False

    def key(self, scenario: Scenario) -> tuple[Any, ...]:
        if scenario.decision is None and scenario.reason is None:
            return self.phase, self.saw_unreachable, self.recovered
        reasons = sorted(_numbers_aside(r) for r in self.reasons)
        return self.phase, self.reason, self.decision, reasons, self.saw_unreachable, self.recovered


def _paused(registry: Path) -> None:
    """SIGSTOP the Prometheus a local runtime started, then SIGCONT it."""
    started: dict[str, str] = json.loads(registry.read_text())
    (pid,) = [int(p) for p, argv0 in started.items() if argv0.endswith("prometheus")]
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(PAUSE_SECONDS)
    finally:
        os.kill(pid, signal.SIGCONT)


# phoenix run --local


def _run_locally(name: str, workdir: Path, endings: dict[str, Ending]) -> None:
    source = workdir / f"{name}.yaml"
    source.write_text(yaml.safe_dump(_manifest(name)))
    run = subprocess.Popen(
        [sys.executable, "-m", "phoenix_operator", "run", "--local", "-f", str(source), "-o", "json",
         *MEASURE_STEP, "--workdir", str(workdir / name)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert run.stderr is not None and run.stdout is not None
    ending = endings.setdefault(name, Ending())
    fault = SCENARIOS[name].fault
    lines = []
    try:
        for line in run.stderr:
            lines.append(line)
            if "Prometheus at" in line and "timed out" in line:
                ending.saw_unreachable = True
            elif ending.saw_unreachable and ("no decision" in line or "series baseline" in line):
                ending.recovered = True
            if fault and ("no decision" in line or "series baseline" in line):
                if fault == "abort":
                    run.send_signal(signal.SIGINT)
                else:
                    threading.Thread(target=_paused, args=(workdir / name / "processes.json",)).start()
                fault = None
        printed = json.loads(run.stdout.read() or "null")
        run.wait(timeout=30)
    finally:
        run.kill()
    assert printed is not None, "".join(lines)
    conditions = [c for c in printed.get("conditions", []) if c["type"] == "Succeeded"]
    verdict = printed.get("verdict") or {}
    ending.phase = printed["phase"]
    ending.reason = conditions[0]["reason"] if conditions else None
    ending.decision = verdict.get("decision")
    ending.reasons = verdict.get("reasons", [])


# the operator with --runtime local


def _operator_ending(plane: controlplane.ControlPlane, namespace: str, name: str, ending: Ending) -> bool:
    """Fill `ending` from the experiment's status; True once it has ended."""
    found = harness.get(plane, namespace, "pexp", name)
    status = (found or {}).get("status") or {}
    measured = harness.condition(found, "MeasurementAvailable") or {}
    if measured.get("reason") == "PrometheusUnreachable":
        ending.saw_unreachable = True
    elif ending.saw_unreachable and measured.get("reason") == "Measured":
        ending.recovered = True
    if status.get("phase") not in ("Completed", "Failed", "Aborted"):
        return False
    succeeded = harness.condition(found, "Succeeded") or {}
    verdict = status.get("verdict") or {}
    ending.phase, ending.reason = status["phase"], succeeded.get("reason")
    ending.decision, ending.reasons = verdict.get("decision"), verdict.get("reasons", [])
    return True


def _through_the_operator(
    plane: controlplane.ControlPlane, names: list[str], workdir: Path, endings: dict[str, Ending]
) -> None:
    namespace = harness.namespace(plane)
    runtime = workdir / "runtime"
    flags = ("--runtime", "local", *MEASURE_STEP, "--workdir", str(runtime))
    with harness.running(plane, namespace, workdir, *flags) as operator:
        for name in names:
            harness.apply(plane, namespace, _manifest(name))
        faults = {name: SCENARIOS[name].fault for name in names if SCENARIOS[name].fault}
        ended: set[str] = set()
        deadline = time.monotonic() + TIMEOUT
        while len(ended) < len(names) and time.monotonic() < deadline:
            for name in [n for n in names if n not in ended]:
                if _operator_ending(plane, namespace, name, endings.setdefault(name, Ending())):
                    ended.add(name)
                elif name in faults and harness.condition(
                    harness.get(plane, namespace, "pexp", name), "MeasurementAvailable"
                ):
                    if faults.pop(name) == "abort":
                        patch = json.dumps({"spec": {"abort": True}})
                        plane.kubectl("patch", "-n", namespace, "pexp", name, "--type=merge", "-p", patch)
                    else:
                        threading.Thread(target=_paused, args=(runtime / "processes.json",)).start()
            time.sleep(0.5)
        assert len(ended) == len(names), f"not ended: {set(names) - ended}\n{operator.log()[-3000:]}"


@pytest.fixture(scope="module")
def endings(
    control_plane: controlplane.ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Ending]]:
    """Every scenario through each driver, one driver at a time."""
    root = tmp_path_factory.mktemp("one-driver")
    local: dict[str, Ending] = {}
    operator: dict[str, Ending] = {}
    alone = ("prometheus-pause", "guardrail")  # paused, or measuring collector CPU: their own Prometheus
    groups = [[n for n in SCENARIOS if n not in alone], *([n] for n in alone)]
    jobs: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (_run_locally, (name, root / "run", local)) for name in SCENARIOS
    ]
    jobs += [
        (_through_the_operator, (control_plane, names, root / f"op-{index}", operator))
        for index, names in enumerate(groups)
    ]
    (root / "run").mkdir()
    for index in range(len(groups)):
        (root / f"op-{index}").mkdir()
    errors: list[BaseException] = []

    def guarded(target: Callable[..., None], args: tuple[Any, ...]) -> None:
        try:
            target(*args)
        except BaseException as error:  # raised again below, in the test's thread
            errors.append(error)

    # one driver's scenarios at a time: on two cores, two sets of collectors and loads at
    # once starve the Prometheus scrapes enough to lose batches and blur the figures
    for batch in (jobs[: len(SCENARIOS)], jobs[len(SCENARIOS) :]):
        threads = [threading.Thread(target=guarded, args=job) for job in batch]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=TIMEOUT + 60)
    assert not errors, errors
    return {"run --local": local, "operator": operator}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_both_drivers_end_every_scenario_alike(name: str, endings: dict[str, dict[str, Ending]]) -> None:
    local, operator = endings["run --local"][name], endings["operator"][name]
    scenario = SCENARIOS[name]
    if scenario.may_stay_undecided:
        undecided = ("Completed", "Inconclusive", "Inconclusive")
        for ending in (local, operator):
            expected = (scenario.phase, scenario.reason, scenario.decision)
            assert (ending.phase, ending.reason, ending.decision) in (expected, undecided), ending
            if (ending.phase, ending.reason, ending.decision) == undecided:
                assert any("collector cpu cores increase" in r for r in ending.reasons), ending
        decided = [e for e in (local, operator) if e.phase == scenario.phase]
        assert decided, f"neither driver decided\nrun --local: {local}\noperator: {operator}"
        if len(decided) == 2:
            assert local.key(scenario) == operator.key(scenario), f"run --local: {local}\noperator: {operator}"
        return
    assert local.phase == scenario.phase, local
    if scenario.decision is not None or scenario.reason is not None:
        assert (local.reason, local.decision) == (scenario.reason, scenario.decision), local
    assert local.key(scenario) == operator.key(scenario), f"run --local: {local}\noperator: {operator}"
    if scenario.fault == "pause-prometheus":
        assert local.saw_unreachable and local.recovered, "measuring resumed after Prometheus came back"
    if name == "trap":
        assert any("cpu-by-host-and-executable lost label sets" in r for r in local.reasons), local.reasons
