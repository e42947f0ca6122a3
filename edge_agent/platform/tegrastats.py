"""Jetson board telemetry from ``tegrastats``: power, temperatures, GPU and CPU load as agent metrics.

``parse_line`` turns one line of ``tegrastats`` output into a :class:`TegraSample` (pure; tested on lines
in the formats of JetPack 6 / L4T r36, JetPack 5 and the older Nano); ``metric_lines`` writes a sample in
the Prometheus text format under ``confroute_device_*``; :class:`TegrastatsReader` runs
``tegrastats --interval MS`` and keeps the latest sample for ``/metrics``::

    confroute_device_power_watts{rail}             instantaneous power of each rail (VDD_IN: the whole board)
    confroute_device_power_average_watts{rail}     tegrastats' running average of the same
    confroute_device_temperature_celsius{sensor}   each thermal zone (absent sensors, -256 C, are left out)
    confroute_device_gpu_load_ratio                GR3D busy share, 0..1
    confroute_device_gpu_frequency_hertz           GR3D clock (first GPC), when printed
    confroute_device_cpu_load_ratio{core}          each online core, 0..1
    confroute_device_ram_used_bytes / _total_bytes
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from confroute.errors import InvalidInput, Unavailable

logger = logging.getLogger(__name__)

_MB = 1024 * 1024
_ABSENT_SENSOR_C = -256.0  # what tegrastats prints for a thermal zone without a reading
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB\b")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_CORE = re.compile(r"^(\d+)%(?:@\d+)?$")
_GPU = re.compile(r"\bGR3D_FREQ (\d+)%(?:@\[?(\d+)[\d,]*\]?)?")
_TEMPERATURE = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_POWER = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
_NOT_RAILS = {"RAM", "SWAP"}


@dataclass(frozen=True)
class TegraSample:
    """One tegrastats line. Loads are 0..1; a ``None`` core is offline; power is milliwatts."""

    ram_used_mb: int
    ram_total_mb: int
    cpu_load: tuple[float | None, ...] = ()
    gpu_load: float | None = None
    gpu_frequency_mhz: int | None = None
    temperatures_c: dict[str, float] = field(default_factory=dict)
    power_mw: dict[str, tuple[int, int]] = field(default_factory=dict)  # rail -> (now, average)


def parse_line(line: str) -> TegraSample:
    """The sample in one tegrastats line; :class:`InvalidInput` when it is not one."""
    ram = _RAM.search(line)
    if ram is None:
        raise InvalidInput(f"not a tegrastats line (no RAM field): {line[:80]!r}", field="tegrastats")
    gpu = _GPU.search(line)
    return TegraSample(
        ram_used_mb=int(ram.group(1)),
        ram_total_mb=int(ram.group(2)),
        cpu_load=_cores(line),
        gpu_load=int(gpu.group(1)) / 100 if gpu else None,
        gpu_frequency_mhz=int(gpu.group(2)) if gpu and gpu.group(2) else None,
        temperatures_c={name.lower(): float(value) for name, value in _TEMPERATURE.findall(line)
                        if float(value) > _ABSENT_SENSOR_C},
        power_mw={name: (int(now), int(average)) for name, now, average in _POWER.findall(line)
                  if name not in _NOT_RAILS},
    )


def _cores(line: str) -> tuple[float | None, ...]:
    cpu = _CPU.search(line)
    if cpu is None:
        return ()
    cores: list[float | None] = []
    for item in cpu.group(1).split(","):
        match = _CORE.match(item.strip())
        cores.append(int(match.group(1)) / 100 if match else None)  # "off" (or unknown): offline
    return tuple(cores)


def metric_lines(sample: TegraSample) -> list[str]:
    """The sample in the Prometheus text format (0.0.4), one family per quantity."""
    lines: list[str] = []
    _family(lines, "confroute_device_power_watts", "Power drawn by each rail now (VDD_IN: the board).",
            [(f'rail="{rail}"', now / 1000) for rail, (now, _) in sorted(sample.power_mw.items())])
    _family(lines, "confroute_device_power_average_watts", "tegrastats' running average power of each rail.",
            [(f'rail="{rail}"', avg / 1000) for rail, (_, avg) in sorted(sample.power_mw.items())])
    _family(lines, "confroute_device_temperature_celsius", "Temperature of each thermal zone.",
            [(f'sensor="{name}"', value) for name, value in sorted(sample.temperatures_c.items())])
    if sample.gpu_load is not None:
        _family(lines, "confroute_device_gpu_load_ratio", "Share of time the GPU (GR3D) was busy.",
                [("", sample.gpu_load)])
    if sample.gpu_frequency_mhz is not None:
        _family(lines, "confroute_device_gpu_frequency_hertz", "GPU (GR3D) clock.",
                [("", sample.gpu_frequency_mhz * 1e6)])
    _family(lines, "confroute_device_cpu_load_ratio", "Load of each online CPU core.",
            [(f'core="{i}"', load) for i, load in enumerate(sample.cpu_load) if load is not None])
    _family(lines, "confroute_device_ram_used_bytes", "Memory in use.", [("", sample.ram_used_mb * _MB)])
    _family(lines, "confroute_device_ram_total_bytes", "Memory installed.", [("", sample.ram_total_mb * _MB)])
    return lines


def _family(lines: list[str], name: str, help_text: str, samples: Sequence[tuple[str, float]]) -> None:
    if not samples:
        return
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{{{labels}}} {float(value)!r}" if labels else f"{name} {float(value)!r}"
              for labels, value in samples]


class TegrastatsReader:
    """Runs ``tegrastats`` and keeps its latest sample; :meth:`metric_lines` for the agent's ``/metrics``."""

    def __init__(self, interval_ms: int = 1000, command: Sequence[str] = ("tegrastats",)) -> None:
        if interval_ms < 10:
            raise InvalidInput("tegrastats interval must be at least 10 ms", field="tegrastats_interval_ms")
        self._argv = [*command, "--interval", str(interval_ms)]
        self._lock = threading.Lock()
        self._latest: TegraSample | None = None
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> TegrastatsReader:
        try:
            self._process = subprocess.Popen(self._argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                             text=True, bufsize=1)
        except OSError as exc:
            raise Unavailable(f"cannot run {self._argv[0]}: {exc}") from exc
        self._thread = threading.Thread(target=self._follow, name="tegrastats", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> TegrastatsReader:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def latest(self) -> TegraSample | None:
        with self._lock:
            return self._latest

    def metric_lines(self) -> list[str]:
        sample = self.latest
        return metric_lines(sample) if sample is not None else []

    def _follow(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                sample = parse_line(line)
            except InvalidInput:
                logger.debug("tegrastats: skipped a line it could not read: %r", line[:80])
                continue
            with self._lock:
                self._latest = sample
