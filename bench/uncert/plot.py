"""Accuracy-vs-escalation curves of the cascade, one PNG per dataset (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SHOWN = ("max_prob", "seq_logprob", "probe_slt", "route_tbg", "route_slt", "se10_lik", "se10")


def plot_cascades(report: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for dataset, entry in report["datasets"].items():
        fig, ax = plt.subplots(figsize=(6, 4.2))
        for name in SHOWN:
            curve = entry["signals"].get(name)
            if curve is not None:
                ax.plot(curve["rates"], curve["quality"], marker=".", label=f"{name} (APGR {curve['apgr']:.2f})")
        ax.plot([0, 1], [entry["edge_accuracy"], entry["cloud_accuracy"]], "k--", lw=1, label="random")
        ax.set_xlabel("escalation rate (share of queries sent to the cloud)")
        ax.set_ylabel("accuracy of the cascade")
        ax.set_title(f"bench.uncertainty: {dataset} (test split, n={entry['n']})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = out_dir / f"uncertainty_{dataset}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
