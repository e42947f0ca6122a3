"""Every benchmark runs to completion on the environment ``make test`` built, and writes the keys its docs name.

Each ``python -m bench.NAME`` runs in a fresh interpreter with small flags (a smoke run: the figures are
measurements, not tests, and are not asserted) and ``--json``; the JSON must carry the benchmark's documented
keys and the CPU it ran on. A benchmark nobody runs rots: a new ``bench/NAME.py`` with a ``main`` needs an
entry here. Marked ``bench_smoke``; the times each run took on a 2-core machine are in docs/benchmark-smoke.md.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CPU_KEYS = {"cpu_model", "cpu_isa", "cpu_features"}
NOT_BENCHMARKS = {"__init__", "cpu", "ours", "readme_block", "workers"}  # helpers, worker processes

# name -> (smoke flags, documented JSON keys)
SMOKE: dict[str, tuple[list[str], set[str]]] = {
    "cloud_service": (["--quick", "--rounds", "1", "--window-s", "1"],
                      {"direct_p50_ms", "service_p50_ms", "added_p50_ms", "service_rps_c32", "service_cpu_us_per_req",
                       "service_cpu_us_per_req_c32", "bare_proxy_cpu_us_per_req_c32", "bare_rps_c32",
                       "service_vs_bare_cpu_c32", "service_vs_bare_rps_c32", "outcomes_per_s", "outcomes_floor_per_s",
                       "outcomes_vs_floor", "errors"}),
    "edge_agent": (["--quick", "--rounds", "2", "--escalations", "1"],
                   {"bare_ms", "agent_ms", "agent_overhead_pct", "queue_writes_per_s", "local_p50_ms",
                    "escalated_p50_ms", "local_n", "escalated_n"}),
    "edge_generation": (["--quick", "--runs", "2"],
                        {"ours_fp32_decode_tps", "ours_int8_decode_tps", "ours_int8_kl", "ours_int8_top1",
                         "torch_fp32_decode_tps", "genai_fp32_decode_tps", "genai_int8_decode_tps",
                         "head_overhead_pct", "int8_peak_rss_mb", "cold_start_s"}),
    "edge_serving": (["--quick", "--batch", "4"],
                     {"tps_c1", "tps_c4", "ttft_p50_ms_c1", "ttft_p99_ms_c4", "http_overhead_pct"}),
    "fleet_learning": (["--quick", "--n", "60"],
                       {"apgr_start", "apgr_offline_gold", "apgr_learned_gold", "cpt50_learned_gold", "labels_used",
                        "apgr_random", "rounds", "local_ttft_p50_ms", "default_mode", "text_bytes_after_judging",
                        "text_bytes_after_ttl", "not_measured"}),
    "fleet": (["--quick", "--sizes", "1000", "--rounds", "1", "--recalibrate-outcomes", "20000"],
              {"fanout_p99_s_1k", "fanout_max_s_1k", "connected_1k", "kb_per_watcher_1k", "kb_per_watcher",
               "fanout_floor_p99_s_1k", "connected_floor_1k", "fanout_vs_floor_p99_1k", "recalibrate_1m_s",
               "recalibrate_s"}),
    "load": (["--quick", "--soak-s", "3"],
             {"max_sustained_rps", "p99_ms_at_max", "errors", "rss_growth_mb", "scale_out_ratio"}),
    "routing_replay": (["--quick", "--datasets", "mt_bench", "--folds", "2", "--no-states"],
                       {"benchmark", "datasets", "anchors", "config"}),
    "security": (["--quick"],
                 {"attacks_tried", "attacks_refused", "crashes", "hangs", "auth_added_p50_us"}),
    "uncertainty": (["--quick", "--n-ladder", "24", "--n-mc", "6"],
                    {"n_train", "n_test", "edge_accuracy_test", "signals", "datasets", "plain_generation_ms"}),
}

pytestmark = [pytest.mark.bench_smoke, pytest.mark.slow, pytest.mark.real_model]


def test_every_benchmark_has_a_smoke_run() -> None:
    modules = {p.stem for p in (ROOT / "bench").glob("*.py") if _defines_main(p)} - NOT_BENCHMARKS
    assert modules == set(SMOKE)


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_a_smoke_run_completes_and_writes_the_documented_keys(name: str, tmp_path: Path) -> None:
    flags, keys = SMOKE[name]
    out = tmp_path / f"{name}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", f"bench.{name}", *flags, "--json", str(out)], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=1500, check=False)
    assert run.returncode == 0, f"bench.{name} failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}"
    report = json.loads(out.read_text("utf-8"))
    assert keys | CPU_KEYS <= report.keys(), sorted(keys | CPU_KEYS - report.keys())


def _defines_main(path: Path) -> bool:
    tree = ast.parse(path.read_text("utf-8"))
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)
