"""The simulated process population and its counters, evolved tick by tick.

Everything is numpy arrays of shape (hosts, processes) driven by one seeded
generator, so a seed fixes every pid, executable and value, and `estimate`
can replay the same evolution without encoding anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from phoenix_operator.loadsim import profiles
from phoenix_operator.models import common, loadsim

POINTS_PER_PROCESS = 7  # cpu.time x3 states, memory.usage, memory.virtual, disk.io x2 directions
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass
class Fleet:
    spec: loadsim.LoadProfileSpec
    start_unix_nano: int
    rng: np.random.Generator = field(init=False)
    noise: np.random.Generator = field(init=False)
    profile: profiles.Profile = field(init=False)
    pids: Ints = field(init=False)
    parent_pids: Ints = field(init=False)
    executables: Ints = field(init=False)
    start_nanos: Ints = field(init=False)
    cpu_rates: Floats = field(init=False)
    memory_bytes: Floats = field(init=False)
    io_rates: Floats = field(init=False)
    counters: Floats = field(init=False)
    tick: int = 0
    processes_started: int = 0
    # Slots [0, running) of every host hold processes; a growing profile fills the rest over the run.
    running: int = field(init=False)
    _next_pid: Ints = field(init=False)
    _churn_credit: float = 0.0
    _growth_credit: float = 0.0
    _exe_weights: Floats = field(init=False)

    def __post_init__(self) -> None:
        # Two streams: the population depends on the seed alone, so `estimate`
        # (which skips values) replays exactly the processes a run sends.
        self.rng, self.noise = (np.random.default_rng(s) for s in np.random.SeedSequence(self.spec.seed).spawn(2))
        self.profile = profiles.PROFILES[self.spec.profile]
        ranks = np.arange(1, self.profile.executables + 1, dtype=np.float64)
        weights = ranks**-self.profile.zipf_exponent
        self._exe_weights = weights / weights.sum()
        self.running = self.spec.processes_per_host
        shape = (self.spec.hosts, self.capacity)
        self.pids = np.zeros(shape, dtype=np.int64)
        self.parent_pids = np.zeros(shape, dtype=np.int64)
        self.executables = np.zeros(shape, dtype=np.int64)
        self.start_nanos = np.zeros(shape, dtype=np.int64)
        self.cpu_rates = np.zeros((*shape, 3))
        self.memory_bytes = np.zeros((*shape, 2))
        self.io_rates = np.zeros((*shape, 2))
        self.counters = np.zeros((*shape, 5))
        self._next_pid = np.full(self.spec.hosts, 1000, dtype=np.int64)
        everyone = np.zeros(shape, dtype=bool)
        everyone[:, : self.running] = True
        self._spawn(everyone, self.start_unix_nano - 3_600 * 10**9)
        # Processes already running at the start have used resources for a while.
        self.counters[..., :3] = self.cpu_rates * 3_600
        self.counters[..., 3:] = self.io_rates * 3_600

    @property
    def interval_nanos(self) -> int:
        return int(self.spec.interval_seconds * 1e9)

    @property
    def ticks(self) -> int:
        """How many batches the whole duration sends."""
        return max(
            1,
            int(np.ceil(common.duration_seconds(self.spec.duration) / self.spec.interval_seconds)),
        )

    @property
    def capacity(self) -> int:
        """Processes per host at the end of the run."""
        return self.spec.processes_per_host + int(self.growth_per_tick() * (self.ticks - 1))

    def growth_per_tick(self) -> float:
        per_minute = self.profile.growth_fraction_per_minute * self.spec.processes_per_host
        return per_minute * self.spec.interval_seconds / 60.0

    def churn_per_tick(self) -> float:
        per_minute = self.spec.churn_per_minute or (
            self.profile.default_churn_fraction_per_minute * self.spec.processes_per_host
        )
        return per_minute * self.spec.interval_seconds / 60.0

    def _spawn(self, mask: npt.NDArray[np.bool_], start_nano: int, executable: int | None = None) -> None:
        count = int(mask.sum())
        if count == 0:
            return
        hosts = np.nonzero(mask)[0]
        per_host = np.bincount(hosts, minlength=self.spec.hosts)
        offsets = np.concatenate([np.arange(n) for n in per_host]) if count else np.zeros(0, np.int64)
        self.pids[mask] = self._next_pid[hosts] + offsets
        self._next_pid += per_host
        self.parent_pids[mask] = self.rng.integers(1, 1000, count)
        self.executables[mask] = (
            self.rng.choice(len(self._exe_weights), count, p=self._exe_weights) if executable is None else executable
        )
        self.start_nanos[mask] = start_nano
        base = self.rng.lognormal(mean=-4.0, sigma=self.profile.cpu_log_sigma, size=count)
        self.cpu_rates[mask] = base[:, None] * np.array([0.7, 0.25, 0.05])
        resident = self.rng.lognormal(mean=17.5, sigma=1.2, size=count)
        self.memory_bytes[mask] = np.stack([resident, resident * self.rng.uniform(2, 8, count)], axis=1)
        self.io_rates[mask] = self.rng.lognormal(mean=8.0, sigma=2.0, size=(count, 2))
        self.counters[mask] = 0.0
        self.processes_started += count

    def advance(self) -> npt.NDArray[np.bool_]:
        """Move to the next tick; returns the mask of processes that are new in it."""
        self.tick += 1
        self._churn_credit += self.churn_per_tick()
        replaced = int(self._churn_credit)
        self._churn_credit -= replaced
        replaced = min(replaced, self.running)
        new = np.zeros(self.pids.shape, dtype=bool)
        if replaced:
            slots = np.argsort(self.rng.random((self.spec.hosts, self.running)), axis=1)[:, :replaced]
            np.put_along_axis(new, slots, True, axis=1)
            self._spawn(new, self.now_nanos())
        self._growth_credit += self.growth_per_tick()
        added = min(int(self._growth_credit), self.capacity - self.running)
        self._growth_credit -= added
        if added:
            grown_slots = np.zeros(self.pids.shape, dtype=bool)
            grown_slots[:, self.running : self.running + added] = True
            self._spawn(grown_slots, self.now_nanos(), profiles.EXECUTABLES.index(self.profile.growth_executable))
            self.running += added
            new |= grown_slots
        grown = ~new
        seconds = self.spec.interval_seconds
        jitter = self.noise.uniform(0.9, 1.1, size=self.pids.shape)
        self.counters[..., :3][grown] += (self.cpu_rates * seconds * jitter[..., None])[grown]
        self.counters[..., 3:][grown] += (self.io_rates * seconds * jitter[..., None])[grown]
        return new

    def now_nanos(self) -> int:
        return self.start_unix_nano + self.tick * self.interval_nanos

    def values(self) -> Floats:
        """This tick's point values, shape (hosts, running processes, POINTS_PER_PROCESS).

        Memory drifts slowly (a small multiplicative random walk), as resident
        sizes do, rather than jumping at every sample.
        """
        self.memory_bytes *= self.noise.uniform(0.998, 1.002, size=self.pids.shape)[..., None]
        values = np.concatenate([self.counters[..., :3], np.round(self.memory_bytes), self.counters[..., 3:]], axis=2)
        return values[:, : self.running]


@dataclass(frozen=True)
class Estimate:
    batches: int
    processes: int
    unique_series: int
    active_series: int
    datapoints: int


def estimate(spec: loadsim.LoadProfileSpec) -> Estimate:
    """Replay the population evolution of `spec` without generating values."""
    fleet = Fleet(spec, start_unix_nano=0)
    processes_sent = fleet.running
    for _ in range(fleet.ticks - 1):
        fleet.advance()
        processes_sent += fleet.running
    return Estimate(
        batches=fleet.ticks,
        processes=fleet.processes_started,
        unique_series=fleet.processes_started * POINTS_PER_PROCESS,
        active_series=spec.hosts * fleet.running * POINTS_PER_PROCESS,
        datapoints=spec.hosts * processes_sent * POINTS_PER_PROCESS,
    )
