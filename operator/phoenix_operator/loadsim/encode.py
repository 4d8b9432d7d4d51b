"""OTLP/protobuf encoding with pre-encoded templates.

A host's request is encoded once per change of its processes. Every field
that changes per batch (timestamps and values) is a fixed64, so its position
in the bytes never moves: a batch is the cached bytes with those positions
overwritten from numpy arrays, without building a Python object per point.
The wire format is opentelemetry-proto's ExportMetricsServiceRequest; a test
decodes the output with the official generated classes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from phoenix_operator.loadsim import fleet, profiles

_FIXED64 = 1
_LENGTH_DELIMITED = 2
_VARINT = 0
_CUMULATIVE = 2
SCOPE_NAME = "phoenix-loadsim"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _field(number: int, payload: bytes) -> bytes:
    return _key(number, _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _string_attribute(key: str, value: str) -> bytes:
    return _field(1, key.encode()) + _field(2, _field(1, value.encode()))


def _int_attribute(key: str, value: int) -> bytes:
    return _field(1, key.encode()) + _field(2, _key(3, _VARINT) + _varint(value))


@dataclass
class _Piece:
    """Encoded bytes plus where each point's time and value sit inside them."""

    data: bytes
    time_offsets: list[int]
    value_offsets: list[int]

    def wrapped(self, number: int) -> _Piece:
        prefix = _key(number, _LENGTH_DELIMITED) + _varint(len(self.data))
        shift = len(prefix)
        return _Piece(
            prefix + self.data,
            [o + shift for o in self.time_offsets],
            [o + shift for o in self.value_offsets],
        )


def _concat(pieces: list[_Piece]) -> _Piece:
    data, times, values, position = [], [], [], 0
    for piece in pieces:
        data.append(piece.data)
        times += [o + position for o in piece.time_offsets]
        values += [o + position for o in piece.value_offsets]
        position += len(piece.data)
    return _Piece(b"".join(data), times, values)


def _point(attributes: bytes, start_nano: int) -> _Piece:
    # NumberDataPoint: attributes(7) start_time(2) time(3) as_double(4); the last three fixed64.
    head = attributes + _key(2, _FIXED64) + struct.pack("<Q", start_nano) + _key(3, _FIXED64)
    data = head + bytes(8) + _key(4, _FIXED64) + bytes(8)
    return _Piece(data, [len(head)], [len(head) + 9])


def _metric(name: str, unit: str, points: list[_Piece], monotonic: bool | None) -> _Piece:
    header = _field(1, name.encode()) + _field(3, unit.encode())
    body = _concat([p.wrapped(1) for p in points])
    if monotonic is None:
        inner = body.wrapped(5)  # gauge
    else:
        sum_tail = _key(2, _VARINT) + _varint(_CUMULATIVE) + _key(3, _VARINT) + _varint(int(monotonic))
        inner = _Piece(body.data + sum_tail, body.time_offsets, body.value_offsets).wrapped(7)
    return _concat([_Piece(header, [], []), inner])


def resource_attributes(population: fleet.Fleet, host: int, slot: int) -> dict[str, str | int]:
    """The resource of the process in `slot` on `host`, as the hostmetrics process scraper describes one."""
    exe_index = int(population.executables[host, slot])
    exe = profiles.EXECUTABLES[exe_index]
    # A service runs as the same user on every host (postgres as postgres).
    owner = profiles.OWNERS[exe_index % len(profiles.OWNERS)]
    pid = int(population.pids[host, slot])
    command_line = f"/usr/bin/{exe} --worker {slot}"
    if population.profile.unique_command_lines:
        command_line += f" --session {pid:08x}{host:04x}"
    return {
        "host.name": f"host-{host:04d}",
        "process.pid": pid,
        "process.parent_pid": int(population.parent_pids[host, slot]),
        "process.executable.name": exe,
        "process.executable.path": f"/usr/bin/{exe}",
        "process.command": f"/usr/bin/{exe}",
        "process.command_line": command_line,
        "process.owner": owner,
    }


def _resource_attributes(population: fleet.Fleet, host: int, slot: int) -> bytes:
    return b"".join(
        _field(1, _int_attribute(key, value) if isinstance(value, int) else _string_attribute(key, value))
        for key, value in resource_attributes(population, host, slot).items()
    )


@dataclass(frozen=True)
class MetricShape:
    name: str
    unit: str
    monotonic: bool | None  # None: a gauge
    point_attribute: str | None  # what tells its points apart, with its `values`
    values: tuple[str, ...] = ("",)


# Each process's metrics, their points in fleet.values() order.
METRICS = (
    MetricShape("process.cpu.time", "s", True, "state", ("user", "system", "wait")),
    MetricShape("process.memory.usage", "By", False, None),
    MetricShape("process.memory.virtual", "By", False, None),
    MetricShape("process.disk.io", "By", True, "direction", ("read", "write")),
)


def _process(population: fleet.Fleet, host: int, slot: int) -> _Piece:
    """One ResourceMetrics: a process with its seven points, in fleet.values() order."""
    start = int(population.start_nanos[host, slot])
    metrics = [
        _metric(
            shape.name,
            shape.unit,
            [
                _point(_field(7, _string_attribute(shape.point_attribute, v)) if shape.point_attribute else b"", start)
                for v in shape.values
            ],
            shape.monotonic,
        )
        for shape in METRICS
    ]
    scope = _concat([_Piece(_field(1, _field(1, SCOPE_NAME.encode())), [], [])] + [m.wrapped(2) for m in metrics])
    resource = _Piece(_field(1, _resource_attributes(population, host, slot)), [], [])
    return _concat([resource, scope.wrapped(2)]).wrapped(1)


class HostEncoder:
    """The cached request of one host, re-encoded only where processes changed."""

    def __init__(self, population: fleet.Fleet, host: int) -> None:
        self.population = population
        self.host = host
        self._pieces = [_process(population, host, s) for s in range(population.running)]
        self._assemble()

    def _assemble(self) -> None:
        whole = _concat(self._pieces)
        self._buffer = np.frombuffer(whole.data, dtype=np.uint8).copy()
        self._time_index = np.asarray(whole.time_offsets, dtype=np.int64)[:, None] + np.arange(8)
        self._value_index = np.asarray(whole.value_offsets, dtype=np.int64)[:, None] + np.arange(8)

    def replace(self, slots: npt.NDArray[np.int64]) -> None:
        """Encode the processes new in `slots` again: replaced ones, or added ones past the end (ascending)."""
        for slot in slots:
            piece = _process(self.population, self.host, int(slot))
            if slot < len(self._pieces):
                self._pieces[int(slot)] = piece
            else:
                self._pieces.append(piece)
        self._assemble()

    def encode(self, now_nano: int, values: npt.NDArray[np.float64]) -> bytes:
        """The request bytes for this tick; `values` is (running processes, 7) for this host."""
        self._buffer[self._time_index] = np.frombuffer(struct.pack("<Q", now_nano), dtype=np.uint8)
        self._buffer[self._value_index] = values.astype("<f8").reshape(-1, 1).view(np.uint8).reshape(-1, 8)
        return self._buffer.tobytes()


class FleetEncoder:
    """Evolves a fleet and yields, per tick, one encoded request per host."""

    def __init__(self, population: fleet.Fleet) -> None:
        self.population = population
        self.hosts = [HostEncoder(population, h) for h in range(population.spec.hosts)]

    def batch(self) -> list[bytes]:
        values = self.population.values()
        now = self.population.now_nanos()
        return [encoder.encode(now, values[h]) for h, encoder in enumerate(self.hosts)]

    def advance(self) -> None:
        new = self.population.advance()
        for host in np.nonzero(new.any(axis=1))[0]:
            self.hosts[int(host)].replace(np.nonzero(new[host])[0])
