"""The printed table, the JSON document and the quality-vs-escalation PNGs of the replay benchmark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.readme_block import measured_on
from bench.replay.data import ReplayData
from bench.replay.evaluate import RouterResult

#: Published CPT(50%) / APGR of routers trained on other data (Chatbot Arena + augmentation): RouteLLM
#: (Ong et al., arXiv 2406.18665) and the Confidence-Driven LLM Router (arXiv 2502.11021).
ANCHORS: tuple[dict[str, Any], ...] = (
    {"dataset": "mt_bench", "metric": "cpt50", "value": 0.1340, "source": "RouteLLM MF router (Arena + judge data)"},
    {"dataset": "mt_bench", "metric": "cpt50", "value": 0.1958, "source": "RouteLLM BERT router"},
    {"dataset": "mt_bench", "metric": "apgr", "value": 0.802, "source": "RouteLLM MF router"},
    {"dataset": "gsm8k", "metric": "cpt50", "value": 0.3364, "source": "RouteLLM causal-LLM router"},
    {"dataset": "gsm8k", "metric": "cpt50", "value": 0.4189, "source": "2502.11021 Confidence-MF"},
    {"dataset": "gsm8k", "metric": "cpt80", "value": 0.7534, "source": "2502.11021 Confidence-MF"},
    {"dataset": "mmlu", "metric": "cpt50", "value": 0.35, "source": "RouteLLM routers (about 35-41%)"},
)
CAVEAT = ("RouteLLM's and the paper's routers were trained on other data (Chatbot Arena preferences plus "
          "augmentation), not on these benchmarks; the routers here are cross-fitted on the benchmarks' own "
          "logged outcomes, so the comparison is 'what a user gets training on their own logged outcomes', "
          "not a like-for-like contest of router architectures.")


@dataclass(frozen=True)
class DatasetReport:
    data: ReplayData
    results: Sequence[RouterResult]
    folds: int
    seeds: int
    embed_tokens: int

    def best_published_cpt50(self) -> float:
        return min(float(a["value"]) for a in ANCHORS if a["dataset"] == self.data.name and a["metric"] == "cpt50")

    def best_pre(self) -> RouterResult:
        pre = [r for r in self.results if not r.post and r.name not in ("oracle", "random")]
        return min(pre, key=lambda r: r.cpt50)

    def to_json(self) -> dict[str, Any]:
        best = self.best_pre()
        return {"n": len(self.data), "dropped_contaminated": self.data.dropped,
                "weak_quality": float(self.data.weak.mean()), "strong_quality": float(self.data.strong.mean()),
                "folds": self.folds, "fold_seeds": self.seeds, "embed_max_tokens": self.embed_tokens,
                "routers": {r.name: r.to_json() for r in self.results},
                "best_pre_generation": {"router": best.name, "cpt50": best.cpt50,
                                        "published_best_cpt50": self.best_published_cpt50(),
                                        "below_published": best.cpt50 < self.best_published_cpt50()}}


def table(reports: Sequence[DatasetReport]) -> str:
    lines = [f"{'dataset':10} {'router':34} {'APGR':>7} {'CPT50':>8} {'CPT80':>8}  (mean over fold seeds; sd)"]
    for rep in reports:
        d = rep.data
        lines.append(f"-- {d.name}: n={len(d)} (dropped {d.dropped} contaminated), weak {d.weak.mean():.3f}, "
                     f"strong {d.strong.mean():.3f}, {rep.folds}-fold cross-fit x {rep.seeds} seeds")
        for r in rep.results:
            label = f"POST {r.name}" if r.post else r.name
            lines.append(f"{d.name:10} {label:34} {r.apgr:7.3f} {r.cpt50:8.2%} {r.cpt80:8.2%}"
                         f"  (sd {r.apgr_sd:.3f}; {r.cpt50_sd:.2%})")
        best = rep.best_pre()
        verdict = "below" if best.cpt50 < rep.best_published_cpt50() else "NOT below"
        lines.append(f"{d.name:10} best pre-generation: {best.name} CPT50 {best.cpt50:.2%}, {verdict} the best "
                     f"published {rep.best_published_cpt50():.2%}")
    lines.append("published anchors (RouteLLM arXiv 2406.18665; arXiv 2502.11021):")
    lines.extend(f"  {a['dataset']:9} {a['metric']:6} {a['value']:.4f}  {a['source']}" for a in ANCHORS)
    lines.append("note: " + CAVEAT)
    lines.append("POST rows read the weak model's answer (the edge answers first in this product); they are not "
                 "comparable to the pre-generation routers or the published ones.")
    return "\n".join(lines)


def document(reports: Sequence[DatasetReport], config: dict[str, Any], cpu: Mapping[str, str]) -> dict[str, Any]:
    return {"benchmark": "routing_replay", "weak": "Mixtral-8x7B-Instruct-v0.1", "strong": "gpt-4-1106-preview",
            **cpu, "config": config, "datasets": {rep.data.name: rep.to_json() for rep in reports},
            "anchors": list(ANCHORS), "caveat": CAVEAT}


def plot(rep: DatasetReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for r in rep.results:
        style = "--" if r.post else (":" if r.name in ("random", "oracle") else "-")
        ax.plot(r.curve.rates, r.curve.quality, style, marker="o", markersize=3,
                label=f"{'POST ' if r.post else ''}{r.name} (APGR {r.apgr:.3f})")
    ax.set_xlabel("escalation rate (share of queries sent to GPT-4)")
    ax.set_ylabel("quality (judge score)" if rep.data.name == "mt_bench" else "accuracy")
    ax.set_title(f"{rep.data.name}: Mixtral-8x7B -> GPT-4, cross-fitted routers (n={len(rep.data)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(reports: Sequence[DatasetReport], images: Sequence[str], command: str, cpu: Mapping[str, str]) -> str:
    """The docs block (in docs/routing-quality.md): one table over datasets and routers, the anchors, the caveat
    and the curves."""
    lines = [f"Regenerated by `{command}` (Mixtral-8x7B-Instruct = weak, GPT-4-1106 = strong; RouteLLM's "
             "published per-query outcomes, contaminated prompts dropped; 11 quantile thresholds, trapezoid APGR, "
             f"interpolated CPT; mean over fold seeds). {measured_on(cpu)}", "",
             "| dataset | n | router | APGR | CPT(50%) | CPT(80%) |", "|---|---:|---|---:|---:|---:|"]
    for rep in reports:
        for r in rep.results:
            label = f"**post-generation:** {r.name}" if r.post else r.name
            lines.append(f"| {rep.data.name} | {len(rep.data)} | {label} | {r.apgr:.3f} | {r.cpt50:.1%} | "
                         f"{r.cpt80:.1%} |")
    lines += ["", "| published (RouteLLM arXiv 2406.18665; arXiv 2502.11021) | dataset | metric | value |",
              "|---|---|---|---:|"]
    lines += [f"| {a['source']} | {a['dataset']} | {a['metric']} | {a['value']:.4g} |" for a in ANCHORS]
    lines += ["", CAVEAT, "Post-generation rows read the weak model's answer (the edge answers first in this "
              "product) and are not comparable with the pre-generation rows or the published routers.", ""]
    lines += [f"![{Path(p).stem}]({p})" for p in images]
    return "\n".join(lines)
