"""Edge generation benchmark: our runtime (fp32, 8-bit, exact 4-bit) against transformers+PyTorch and
onnxruntime-genai (fp32, int8, int4) on SmolLM2-135M-Instruct, same machine, same run, same token ids, same
threads; greedy, exactly 128 new tokens; medians after a warm-up, backends interleaved run by run so load
changes hit all of them alike, each backend alone in its own worker process (see :mod:`bench.workers` for
why). Also: the head's share of a decode step from onnxruntime's per-node profile, for every bundle
(:mod:`confroute.modelkit.head_cost`), and the physical limit: this machine's copy bandwidth and the bytes
each row streams per token (:mod:`bench.streaming`).

    python -m bench.edge_generation [--quick] [--json PATH] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import ours, streaming, workers
from bench.baselines import compare_logprobs, summarize
from bench.cpu import this_cpu
from confroute.modelkit.cli import int4_bundle_dir
from confroute.paths import cache_dir, default_bundle_dir

if TYPE_CHECKING:
    from confroute.modelkit.export import ExportOptions

PROMPT = "Write a short story about a robot who learns to paint."
#: Our bundles and genai's models come in these precisions (ours at "int4": the GGUF's own grid, exact).
GENAI_PRECISIONS = ("fp32", "int8", "int4")


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def prepare(cache: Path) -> dict[str, Path]:
    """Builds whatever is missing: our bundles (fp32, 8-bit, exact 4-bit, head-less fp32), the HF folder,
    genai models."""
    from bench.baselines.genai import build_genai_model
    from bench.baselines.hf_folder import ensure_hf_folder
    from confroute.modelkit.export import EDGE_INT4, EDGE_INT8, ExportOptions, export_bundle
    from confroute.modelkit.sources import fetch_default_gguf, load_default

    paths = {"fp32": default_bundle_dir(cache, False), "int8": default_bundle_dir(cache, True),
             "int4": int4_bundle_dir(cache),
             "nohead": cache / "bench" / "smollm2-nohead", "hf": cache / "bench" / "smollm2-hf",
             **{f"genai_{p}": cache / "bench" / f"genai-{p}" for p in GENAI_PRECISIONS}}
    wanted = {"fp32": ExportOptions(), "int8": ExportOptions(quantization=EDGE_INT8),
              "int4": ExportOptions(quantization=EDGE_INT4), "nohead": ExportOptions(head=False)}
    for key, options in wanted.items():
        if _missing_or_other(paths[key], options):
            _log(f"exporting the {key} bundle")
            export_bundle(load_default(cache, _log), paths[key], options, _log)
    ensure_hf_folder(fetch_default_gguf(cache, _log), paths["hf"])
    for precision in GENAI_PRECISIONS:
        if not (paths[f"genai_{precision}"] / "genai_config.json").is_file():
            _log(f"building the onnxruntime-genai {precision} model")
            build_genai_model(paths["hf"], precision, paths[f"genai_{precision}"])
    return paths


def _missing_or_other(bundle: Path, options: ExportOptions) -> bool:
    """Whether ``bundle`` must be (re)built: absent, from an older exporter graph, or quantized otherwise
    than ``options`` ask (a cached bundle from before a change would measure the old graph or scheme)."""
    from confroute.bundle import load_bundle, needs_export

    if needs_export(bundle):
        return True
    return bool(load_bundle(bundle, verify=False).quantization != options.quantization)


def generate_jobs(paths: dict[str, Path], prompt: list[int], new_tokens: int, threads: int) -> dict[str, Any]:
    """One worker job per timed row (see :mod:`bench.workers`: each loads alone in its own process).

    ``ours_*`` run as ``edge-agent serve`` runs them, with glibc's huge-page malloc
    (:mod:`edge_agent.huge_pages`); ``genai_*`` as onnxruntime-genai ships, with glibc's default. The
    ``*_default_malloc`` and ``*_huge_pages`` rows give each side the other's setting, so that both
    like-for-like comparisons are in the same run (fp32 and 8-bit; the 4-bit rows run as served/shipped).
    """
    models = {"fp32": (paths["fp32"], paths["genai_fp32"]), "int8": (paths["int8"], paths["genai_int8"])}
    jobs: dict[str, Any] = {}
    for precision, (bundle, genai_model) in models.items():
        ours_name, genai_name = f"ours_{precision}", f"genai_{precision}"
        jobs[ours_name] = workers.generate_job(ours_name, bundle, prompt, new_tokens, threads, huge_pages=True)
        jobs[f"{ours_name}_default_malloc"] = workers.generate_job(ours_name, bundle, prompt, new_tokens, threads)
        jobs[genai_name] = workers.generate_job(genai_name, genai_model, prompt, new_tokens, threads)
        jobs[f"{genai_name}_huge_pages"] = workers.generate_job(genai_name, genai_model, prompt, new_tokens, threads,
                                                                huge_pages=True)
    jobs["ours_int4"] = workers.generate_job("ours_int4", paths["int4"], prompt, new_tokens, threads, huge_pages=True)
    jobs["genai_int4"] = workers.generate_job("genai_int4", paths["genai_int4"], prompt, new_tokens, threads)
    jobs["torch_fp32"] = workers.generate_job("torch_fp32", paths["hf"], prompt, new_tokens, threads)
    return jobs


def interleaved(jobs: dict[str, dict[str, Any]], runs: int, warm_up: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Starts a worker per job, then ``runs`` rounds of one measurement each, the order reversed every
    other round (so neither end of a round is always the same backend's)."""
    answers: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
    with ExitStack() as stack:
        started = {}
        for name, job in jobs.items():
            _log(f"loading {name} in its own process")
            started[name] = stack.enter_context(workers.Worker(job))
        if warm_up:
            for name, worker in started.items():
                _log(f"warm-up {name}")
                worker.run()
        for r in range(runs):
            _log(f"timed round {r + 1}/{runs}")
            order = list(started.items())
            for name, worker in order if r % 2 == 0 else reversed(order):
                answers[name].append(worker.run())
    return answers


def time_interleaved(jobs: dict[str, dict[str, Any]], runs: int, prompt_len: int,
                     threads: int) -> dict[str, dict[str, Any]]:
    timed = {name: [workers.timing_of(a) for a in res] for name, res in interleaved(jobs, runs).items()}
    return {name: summarize(name, [t for t, _ in res], [k for _, k in res], threads, prompt_len)
            for name, res in timed.items()}


def quality(paths: dict[str, Path], prompt: list[int], reference: list[int],
            threads: int) -> dict[str, dict[str, float]]:
    """Top-1 agreement and KL of each row's next-token distributions vs torch fp32, teacher-forced on the
    fp32 reference's greedy tokens."""
    from bench.baselines import genai, torch_generate

    rows = slice(len(prompt) - 1, len(prompt) + len(reference) - 1)
    full = prompt + reference
    ref = torch_generate.torch_next_token_logprobs(paths["hf"], full, threads)[rows]
    out = {"torch_fp32": compare_logprobs(ref, ref)}
    for name in GENAI_PRECISIONS:
        engine = ours.load_engine(paths[name], threads)
        out[f"ours_{name}"] = compare_logprobs(ref, ours.next_token_logprobs(engine, prompt, reference))
        del engine
        lp = genai.genai_next_token_logprobs(paths[f"genai_{name}"], full, len(prompt), threads)[rows]
        out[f"genai_{name}"] = compare_logprobs(ref, lp)
    return out


def head_overhead(paths: dict[str, Path], prompt: list[int], steps: int, rounds: int) -> dict[str, float]:
    """fp32 decode step with the fused head vs the same export without it, each graph in its own worker
    process, interleaved round by round.

    ``head_overhead_pct`` compares with a plain runtime that must still pick the token (argmax in numpy);
    ``head_overhead_graph_pct`` compares the graphs alone (no token picked at all), the stricter view.
    """
    jobs = {"head": workers.step_job(paths["fp32"], prompt, steps, head=True),
            "plain": workers.step_job(paths["nohead"], prompt, steps, head=False),
            "graph": workers.step_job(paths["nohead"], prompt, steps, head=False, pick=False)}
    times = {name: [float(a["step_ms"]) for a in res] for name, res in interleaved(jobs, rounds, False).items()}
    # The fastest step over all rounds: the step's intrinsic cost, the least disturbed by other load.
    med = {k: min(v) for k, v in times.items()}
    return {"step_ms_with_head": med["head"], "step_ms_without_head": med["plain"],
            "step_ms_graph_without_head": med["graph"],
            "head_overhead_pct": 100.0 * (med["head"] - med["plain"]) / med["plain"],
            "head_overhead_graph_pct": 100.0 * (med["head"] - med["graph"]) / med["graph"]}


def head_costs(paths: dict[str, Path], steps: int, threads: int) -> dict[str, dict[str, float]]:
    """The head's share of a decode step of each bundle, from onnxruntime's per-node profile of ``steps``
    steps in one process (:mod:`confroute.modelkit.head_cost`), each bundle in a fresh process."""
    out = {}
    for name in GENAI_PRECISIONS:
        cmd = [sys.executable, "-m", "confroute.modelkit.head_cost", str(paths[name]), "--steps", str(steps),
               "--threads", str(threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[name] = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def physical_limit(paths: dict[str, Path], speed: dict[str, dict[str, Any]], threads: int) -> dict[str, Any]:
    """This machine's copy bandwidth, and per row the bytes it streams per token and the share of that
    bandwidth its decode speed uses."""
    bandwidth = streaming.copy_bandwidth(threads)
    rows: dict[str, dict[str, float]] = {}
    for row, result in speed.items():
        model = _row_model(paths, row)
        if model is None:
            continue
        per_token = streaming.streamed_bytes(model)
        rate = float(result["decode_tok_s"]) * per_token
        rows[row] = {"mb_per_token": round(per_token / 1e6, 2), "gb_per_s": round(rate / 1e9, 3),
                     "of_bandwidth": round(rate / bandwidth, 3)}
    return {"copy_bandwidth_gb_s": round(bandwidth / 1e9, 3), "rows": rows}


def _row_model(paths: dict[str, Path], row: str) -> Path | None:
    base = row.removesuffix("_default_malloc").removesuffix("_huge_pages")
    side, _, precision = base.partition("_")
    if side == "ours":
        return paths[precision] / "model.onnx"
    if side == "genai":
        return paths[base] / "model.onnx"
    return None


def in_child(model: Path, prompt_tokens: int, huge_pages: bool = True, genai: bool = False) -> dict[str, float]:
    """Cold start and peak RSS of a fresh process that imports only the runtime it measures
    (:mod:`bench.edgebench.footprint`): ours by default with huge-page malloc as ``edge-agent serve`` runs
    (its re-execution is not counted: the process starts with the tunable set), genai's as shipped."""
    env = {**workers.environment(os.environ, huge_pages_on=huge_pages), "CONFROUTE_BENCH_T0": repr(time.time())}
    cmd = [sys.executable, "-m", "bench.edgebench.footprint", "--genai" if genai else "--bundle", str(model),
           "--prompt-tokens", str(prompt_tokens)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def footprints(paths: dict[str, Path], prompt_tokens: int) -> dict[str, dict[str, float]]:
    """:func:`in_child` for our bundles (and the 8-bit one with glibc's default malloc) and genai's 4- and
    8-bit models."""
    child = {name: in_child(paths[name], prompt_tokens) for name in ("int8", "fp32", "int4")}
    child["int8_default_malloc"] = in_child(paths["int8"], prompt_tokens, huge_pages=False)
    for precision in ("int8", "int4"):
        child[f"genai_{precision}"] = in_child(paths[f"genai_{precision}"], prompt_tokens, huge_pages=False,
                                               genai=True)
    return child


def table(speed: dict[str, dict[str, Any]], qual: dict[str, dict[str, float]]) -> str:
    lines = [f"{'backend':28} {'decode tok/s':>12} {'(all runs)':>34} {'prefill ms':>10} {'top-1':>6} {'mean KL':>8}"]
    for name, row in speed.items():
        q = qual.get(name) or qual.get(name.removesuffix("_default_malloc").removesuffix("_huge_pages"), {})
        lines.append(f"{name:28} {row['decode_tok_s']:12.1f} {row['decode_tok_s_all']!s:>34} "
                     f"{row['prefill_ms']:10.0f} {q.get('top1_agreement', float('nan')):6.3f} "
                     f"{q.get('mean_kl', float('nan')):8.4f}")
    return "\n".join(lines)


def summary_json(speed: dict[str, dict[str, Any]], qual: dict[str, dict[str, float]], head: dict[str, float],
                 child: dict[str, dict[str, float]], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON the README block reads; ``meta`` also carries ``head_cost`` and ``physical_limit``."""
    def tps(name: str) -> float:
        return round(float(speed[name]["decode_tok_s"]), 2)

    compared = {key: paired(speed, ours_row, genai_row) for key, (ours_row, genai_row) in COMPARISONS.items()}

    return {
        "ours_fp32_decode_tps": tps("ours_fp32"), "ours_int8_decode_tps": tps("ours_int8"),
        "ours_int8_kl": qual["ours_int8"]["mean_kl"], "ours_int8_top1": qual["ours_int8"]["top1_agreement"],
        "ours_fp32_kl": qual["ours_fp32"]["mean_kl"],
        "torch_fp32_decode_tps": tps("torch_fp32"), "genai_fp32_decode_tps": tps("genai_fp32"),
        "genai_int8_decode_tps": tps("genai_int8"), "genai_int8_kl": qual["genai_int8"]["mean_kl"],
        "ours_int4_decode_tps": tps("ours_int4"), "ours_int4_kl": qual["ours_int4"]["mean_kl"],
        "ours_int4_top1": qual["ours_int4"]["top1_agreement"],
        "genai_int4_decode_tps": tps("genai_int4"), "genai_int4_kl": qual["genai_int4"]["mean_kl"],
        **{key: compared[key]["median"] for key in COMPARISONS},
        "fp32_vs_genai_best": _best_ratio(speed, "ours_fp32", "genai_fp32"),
        "int8_vs_genai_best": _best_ratio(speed, "ours_int8", "genai_int8"),
        "head_overhead_pct": round(head["head_overhead_pct"], 2),
        "head_overhead_graph_pct": round(head["head_overhead_graph_pct"], 2),
        "int8_peak_rss_mb": round(child["int8"]["peak_rss_mb"], 1),
        "int4_peak_rss_mb": round(child["int4"]["peak_rss_mb"], 1),
        "genai_int4_peak_rss_mb": round(child["genai_int4"]["peak_rss_mb"], 1),
        "genai_int8_peak_rss_mb": round(child["genai_int8"]["peak_rss_mb"], 1),
        "int4_head_pct": meta["head_cost"]["int4"]["head_pct"],
        "fp32_peak_rss_mb": round(child["fp32"]["peak_rss_mb"], 1),
        "cold_start_s": round(child["int8"]["cold_start_s"], 3),
        "cold_start_fp32_s": round(child["fp32"]["cold_start_s"], 3),
        "int8_peak_rss_mb_default_malloc": round(child["int8_default_malloc"]["peak_rss_mb"], 1),
        "cold_start_s_default_malloc": round(child["int8_default_malloc"]["cold_start_s"], 3),
        "paired": compared, "rows": speed, "quality": qual, "head": head, **meta,
    }


#: ``<key>``: (our row, genai's row). As served against as shipped, then each side given the other's malloc.
COMPARISONS = {
    "fp32_vs_genai": ("ours_fp32", "genai_fp32"), "int8_vs_genai": ("ours_int8", "genai_int8"),
    "fp32_vs_genai_both_huge_pages": ("ours_fp32", "genai_fp32_huge_pages"),
    "int8_vs_genai_both_huge_pages": ("ours_int8", "genai_int8_huge_pages"),
    "fp32_vs_genai_both_default_malloc": ("ours_fp32_default_malloc", "genai_fp32"),
    "int8_vs_genai_both_default_malloc": ("ours_int8_default_malloc", "genai_int8"),
    "int4_vs_genai_int8": ("ours_int4", "genai_int8"), "int4_vs_genai_int4": ("ours_int4", "genai_int4"),
}


def paired(speed: dict[str, dict[str, Any]], ours_key: str, theirs_key: str, resamples: int = 2000) -> dict[str, Any]:
    """Ours/theirs within each round (rounds interleave the backends, so a round's load hits both alike; a
    ratio of medians would mix different rounds): the median ratio, a 90% bootstrap interval for it (rounds
    resampled, seeded) and in how many rounds ours was the faster."""
    import numpy as np

    pairs = zip(speed[ours_key]["decode_tok_s_all"], speed[theirs_key]["decode_tok_s_all"], strict=True)
    ratios = np.asarray([float(a) / float(b) for a, b in pairs])
    picks = np.random.default_rng(0).integers(0, len(ratios), (resamples, len(ratios)))
    low, high = np.quantile(np.median(ratios[picks], axis=1), [0.05, 0.95])
    return {"median": round(float(np.median(ratios)), 3), "ci90": [round(float(low), 3), round(float(high), 3)],
            "ahead": int((ratios > 1.0).sum()), "rounds": len(ratios)}


def comparison_lines(result: dict[str, Any]) -> str:
    """One printed line per comparison: median, its interval and the rounds ours led."""
    labels = {"": "as served vs as shipped", "_both_huge_pages": "both with our malloc",
              "_both_default_malloc": "both with glibc's default"}
    lines = []
    for suffix, label in labels.items():
        parts = []
        for precision, name in (("fp32", "fp32"), ("int8", "8-bit")):
            c = result["paired"][f"{precision}_vs_genai{suffix}"]
            parts.append(f"{name} {c['median']:.3f} [{c['ci90'][0]:.3f}, {c['ci90'][1]:.3f}] ahead in "
                         f"{c['ahead']}/{c['rounds']} rounds")
        lines.append(f"ours / genai, {label}: " + "; ".join(parts))
    return "\n".join(lines)


def int4_lines(result: dict[str, Any]) -> str:
    """Our exact 4-bit bundle against genai's int8 and its (lossy) int4."""
    lines = []
    for key, label in (("int4_vs_genai_int8", "ours exact 4-bit / genai int8"),
                       ("int4_vs_genai_int4", "ours exact 4-bit / genai int4 (lossy)")):
        c = result["paired"][key]
        lines.append(f"{label}: {c['median']:.3f} [{c['ci90'][0]:.3f}, {c['ci90'][1]:.3f}] ahead in "
                     f"{c['ahead']}/{c['rounds']} rounds")
    return "\n".join(lines)


def cost_lines(result: dict[str, Any]) -> str:
    """The head's profiled share per bundle, and each row against the machine's copy bandwidth."""
    heads = ", ".join(f"{name} {c['head_pct']:.2f}% of {c['step_us'] / 1000:.2f} ms"
                      for name, c in result["head_cost"].items())
    limit = result["physical_limit"]
    rows = "; ".join(f"{row} {r['mb_per_token']:.0f} MB/token = {r['gb_per_s']:.2f} GB/s "
                     f"({100 * r['of_bandwidth']:.0f}%)" for row, r in limit["rows"].items())
    return (f"head (per-node profile, same process): {heads}\n"
            f"copy bandwidth {limit['copy_bandwidth_gb_s']:.2f} GB/s; streamed per token: {rows}")


def _best_ratio(speed: dict[str, dict[str, Any]], ours_key: str, theirs_key: str) -> float:
    """Fastest round against fastest round: each backend at its least disturbed."""
    ours, theirs = max(speed[ours_key]["decode_tok_s_all"]), max(speed[theirs_key]["decode_tok_s_all"])
    return round(float(ours) / float(theirs), 3)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.edge_generation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--quick", action="store_true", help="3 timed runs instead of 5")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    paths = prepare(cache_dir(os.environ))
    prompt = ours.load_engine(paths["fp32"]).encode_chat([{"role": "user", "content": PROMPT}])
    speed = time_interleaved(generate_jobs(paths, prompt, 128, args.threads), runs, len(prompt), args.threads)
    _log("quality vs the fp32 reference")
    qual = quality(paths, prompt, list(speed["torch_fp32"]["tokens"]), args.threads)
    _log("head overhead, cold start and peak RSS")
    head = head_overhead(paths, prompt, 64, 3 if args.quick else 5)
    child = footprints(paths, len(prompt))
    _log("head cost from per-node profiles; copy bandwidth")
    meta = {"runs": runs, "threads": args.threads, "new_tokens": 128, "prompt_tokens": len(prompt),
            "cpu_count": os.cpu_count(), **this_cpu().to_json(), "load_avg_1m": os.getloadavg()[0],
            "head_cost": head_costs(paths, 100 if args.quick else 300, args.threads),
            "physical_limit": physical_limit(paths, speed, args.threads)}
    result = summary_json(speed, qual, head, child, meta)
    print(table(speed, qual))
    print(comparison_lines(result) + " (median of per-round ratios [90% bootstrap interval])")
    print(int4_lines(result))
    print(cost_lines(result))
    print(f"fastest round against fastest round: fp32 {result['fp32_vs_genai_best']:.2f}, "
          f"8-bit {result['int8_vs_genai_best']:.2f}")
    print(f"head overhead {result['head_overhead_pct']:.2f}% of an fp32 decode step "
          f"({result['head_overhead_graph_pct']:.2f}% graph vs graph); 8-bit peak RSS "
          f"{result['int8_peak_rss_mb']:.0f} MB (fp32 {result['fp32_peak_rss_mb']:.0f} MB); cold start to first "
          f"token {result['cold_start_s']:.2f} s (8-bit), {result['cold_start_fp32_s']:.2f} s (fp32); with glibc's "
          f"default malloc: 8-bit peak RSS {result['int8_peak_rss_mb_default_malloc']:.0f} MB, cold start "
          f"{result['cold_start_s_default_malloc']:.2f} s; exact 4-bit peak RSS {result['int4_peak_rss_mb']:.0f} MB "
          f"(genai int4 {result['genai_int4_peak_rss_mb']:.0f} MB, int8 {result['genai_int8_peak_rss_mb']:.0f} MB)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
