"""The docs block bench.uncertainty regenerates (in docs/routing-quality.md): the signal table, the cascade per
dataset, the curves."""

from __future__ import annotations

from typing import Any

from bench.readme_block import measured_on

GOAL_AUROC_GAP = 0.02
GOAL_COST = 1.05
GOAL_ECE = 0.03


def render(report: dict[str, Any], png_paths: list[str], command: str) -> str:
    lines = [
        f"Measured by `{command}` on {report['n_test']} held-out items (probes and isotonic maps fitted on "
        f"{report['n_train']} others): edge accuracy {report['edge_accuracy_test']:.3f}"
        + (f", cloud accuracy {report['cloud_accuracy_test']:.3f}" if "cloud_accuracy_test" in report else "")
        + f"; one plain generation {report['plain_generation_ms']:.0f} ms. {measured_on(report)}",
        "",
        "| signal | AUROC | AURAC | ECE (isotonic) | ECE, both halves | cost vs one generation | APGR | CPT(50%) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cascade = report["datasets"].get("all", {}).get("signals", {})
    for name, s in report["signals"].items():
        c = cascade.get(name, {})
        lines.append(f"| `{name}` | {s['auroc']:.3f} | {s['aurac']:.3f} | {s['ece']:.3f} | "
                     f"{_num(s.get('ece_crossfit'))} | {s['cost_ratio']:.2f}x | "
                     f"{_num(c.get('apgr'))} | {_pct(c.get('cpt50'))} |")
    lines += ["", "| dataset | n | edge acc. | cloud acc. | best APGR (signal) | its CPT(50%) |",
              "|---|---:|---:|---:|---|---:|"]
    for dataset, entry in report["datasets"].items():
        best = max(entry["signals"].items(), key=lambda kv: kv[1]["apgr"], default=None)
        best_text = f"{best[1]['apgr']:.3f} (`{best[0]}`) | {_pct(best[1]['cpt50'])}" if best else "- | -"
        lines.append(f"| {dataset} | {entry['n']} | {entry['edge_accuracy']:.3f} | {entry['cloud_accuracy']:.3f} | "
                     f"{best_text} |")
    lines += ["", _goals(report), "", *(f"![{p}]({p})" for p in png_paths)]
    return "\n".join(lines)


def _goals(report: dict[str, Any]) -> str:
    signals = report["signals"]
    se_name, se = max(((n, signals[n]) for n in ("se10", "se10_lik") if n in signals), key=lambda kv: kv[1]["auroc"])
    probes = {name: s for name, s in signals.items() if name.split("_")[0] in ("probe", "route", "sep")}
    best_name, best = max(probes.items(), key=lambda kv: kv[1]["auroc"])
    gap = se["auroc"] - best["auroc"]
    met_auroc = gap <= GOAL_AUROC_GAP and best["cost_ratio"] <= GOAL_COST
    eces = {name: s["ece"] for name, s in signals.items()}
    under = [name for name, value in eces.items() if value <= GOAL_ECE]
    crossfit = [name for name, s in signals.items() if s.get("ece_crossfit", 1.0) <= GOAL_ECE]
    return (f"Goals: best fused probe `{best_name}` AUROC {best['auroc']:.3f} vs the better semantic entropy with "
            f"N=10 (`{se_name}`) {se['auroc']:.3f} (gap {gap:+.3f}, goal <= {GOAL_AUROC_GAP}) at "
            f"{best['cost_ratio']:.2f}x vs {se['cost_ratio']:.2f}x: **{'met' if met_auroc else 'not met'}**. "
            f"ECE <= {GOAL_ECE} after calibration: {', '.join(f'`{n}`' for n in under) or 'no signal'} "
            f"({len(under)} of {len(eces)}; **{'met' if under else 'not met'}** on the {report['n_test']} test items, "
            "where even a perfectly calibrated score shows an ECE of a few hundredths from sampling noise; over "
            f"both halves, each calibrated by the map fitted on the other: "
            f"{', '.join(f'`{n}`' for n in crossfit) or 'no signal'}). APGR is "
            "unstable on a dataset where the cloud model barely beats the edge model (gap < 0.1).")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
