"""The tegrastats reader: board telemetry parsed from recorded lines and exported as agent metrics."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from confroute.errors import InvalidInput
from edge_agent.platform.tegrastats import TegrastatsReader, metric_lines, parse_line

LINES = [line for line in (Path(__file__).parent / "tegrastats_lines.txt").read_text().splitlines()
         if line and not line.startswith("#")]
ORIN_NANO, AGX_ORIN, XAVIER_NX, NANO = LINES


def test_an_orin_nano_line_on_jetpack_6_gives_power_temperatures_and_loads() -> None:
    sample = parse_line(ORIN_NANO)

    assert (sample.ram_used_mb, sample.ram_total_mb) == (3152, 7620)
    assert sample.cpu_load == (0.03, 0.02, 0.01, 0.0, None, None)
    assert (sample.gpu_load, sample.gpu_frequency_mhz) == (0.0, None)
    assert sample.temperatures_c["gpu"] == 46.468 and sample.temperatures_c["tj"] == 47.281
    assert sample.power_mw == {"VDD_IN": (4960, 4960), "VDD_CPU_GPU_CV": (483, 483), "VDD_SOC": (1450, 1450)}


def test_an_agx_orin_line_reads_the_first_gpc_clock_and_every_rail() -> None:
    sample = parse_line(AGX_ORIN)

    assert (sample.gpu_load, sample.gpu_frequency_mhz) == (0.87, 1300)
    assert len(sample.cpu_load) == 12 and sample.cpu_load.count(None) == 4
    assert set(sample.power_mw) == {"VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"}


def test_absent_sensors_are_left_out_and_sensor_names_are_lower_case() -> None:
    sample = parse_line(XAVIER_NX)

    assert "iwlwifi" not in sample.temperatures_c
    assert sample.temperatures_c["gpu"] == 37.5 and sample.temperatures_c["pmic"] == 50.0
    assert (sample.gpu_load, sample.gpu_frequency_mhz) == (0.0, 114)


def test_older_boards_print_power_without_units() -> None:
    sample = parse_line(NANO)

    assert sample.power_mw["POM_5V_IN"] == (3283, 3161)
    assert sample.gpu_load == 0.45


def test_a_line_that_is_not_tegrastats_is_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_line("tegrastats: command not found")


def test_the_metrics_are_prometheus_gauges_in_si_units() -> None:
    text = "\n".join(metric_lines(parse_line(ORIN_NANO)))

    assert 'confroute_device_power_watts{rail="VDD_IN"} 4.96' in text
    assert 'confroute_device_temperature_celsius{sensor="gpu"} 46.468' in text
    assert "confroute_device_gpu_load_ratio 0.0" in text
    assert 'confroute_device_cpu_load_ratio{core="4"}' not in text  # offline
    assert f"confroute_device_ram_used_bytes {3152 * 1024 * 1024}.0" in text
    assert text.count("# TYPE") == text.count("# HELP")


def test_the_reader_keeps_the_latest_sample_of_a_running_tegrastats(tmp_path: Path) -> None:
    fake = tmp_path / "tegrastats.py"  # prints the recorded lines at the requested interval, like the tool
    fake.write_text("import sys, time\n"
                    f"lines = {LINES!r}\n"
                    "for line in lines + ['garbage']:\n"
                    "    print(line, flush=True)\n"
                    "time.sleep(60)\n")

    with TegrastatsReader(interval_ms=100, command=(sys.executable, str(fake))) as reader:
        deadline = time.monotonic() + 10
        while (reader.latest is None or reader.latest.ram_total_mb != 3964) and time.monotonic() < deadline:
            time.sleep(0.02)

        assert reader.latest == parse_line(NANO)  # the last good line; garbage after it is skipped
        assert any(line.startswith("confroute_device_power_watts") for line in reader.metric_lines())


def test_the_agent_api_serves_the_board_metrics_next_to_its_own() -> None:
    from edge_agent.api.metrics import ApiMetrics

    metrics = ApiMetrics()
    metrics.add_source(lambda: metric_lines(parse_line(AGX_ORIN)))

    text = metrics.render()
    assert "confroute_api_requests_total" in text.split("# HELP")[1]
    assert "confroute_device_gpu_load_ratio 0.87\n" in text
