"""Question sets with gold answers: the arithmetic ladder (generated) and multiple-choice sets of the data pack.

Every question is answered by generation, as the product answers: the final answer is parsed from the text
(``confroute.uncertainty.answers``). ARC-Easy and PIQA are the sets on which SmolLM2-135M is above chance
with option scoring (the data pack's MANIFEST.md, smollm2_135m_eval).

    items = load_items(Path("../shared/data"), n_ladder=240, n_mc=120, seed=0)
    train, test = split(items, test_frac=0.3, seed=0)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from confroute.errors import InvalidInput
from confroute.probes.data import Example, parse_example
from confroute.uncertainty.ladder import arithmetic_ladder

# dataset name -> file under the data folder (normalised MC jsonl: id, question, choices, answer_idx)
MC_SETS = {"arc_easy": "arc/arc_easy_test.jsonl", "piqa": "piqa/piqa_valid.jsonl"}


@dataclass(frozen=True)
class Item:
    """One question with its gold answer; ``dataset`` groups reports, ``item_id`` keys cached outcomes."""

    item_id: str
    dataset: str
    example: Example
    meta: str = ""


def ladder_items(n: int, seed: int) -> list[Item]:
    return [Item(f"ladder-{i:04d}", "ladder", parse_example(q.to_json()), f"{q.digits}d{q.op}")
            for i, q in enumerate(arithmetic_ladder(n, seed))]


def mc_items(data_dir: Path, dataset: str, n: int, seed: int) -> list[Item]:
    """``n`` questions drawn at random (seeded) from one multiple-choice set."""
    path = data_dir / MC_SETS[dataset]
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror} (is --data the data pack?)", field="data") from exc
    rows = [json.loads(line) for line in lines if line.strip()]
    chosen = np.random.default_rng(seed).choice(len(rows), size=min(n, len(rows)), replace=False)
    items = []
    for index in sorted(int(i) for i in chosen):
        row = rows[index]
        record = {"question": row["question"], "options": list(row["choices"]), "kind": "choice",
                  "answer": "ABCDEFGH"[int(row["answer_idx"])]}
        items.append(Item(str(row["id"]), dataset, parse_example(record)))
    return items


def load_items(data_dir: Path, n_ladder: int, n_mc: int, seed: int) -> list[Item]:
    """The ladder's ``n_ladder`` questions, then ``n_mc`` of each multiple-choice set."""
    items = ladder_items(n_ladder, seed)
    for dataset in MC_SETS:
        items += mc_items(data_dir, dataset, n_mc, seed)
    return items


def split(items: list[Item], test_frac: float, seed: int) -> tuple[list[int], list[int]]:
    """Train / test indices, stratified by dataset (each dataset split in the same proportion)."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for dataset in dict.fromkeys(item.dataset for item in items):
        members = rng.permutation([i for i, item in enumerate(items) if item.dataset == dataset])
        k = round(test_frac * members.size)
        test += [int(i) for i in members[:k]]
        train += [int(i) for i in members[k:]]
    return sorted(train), sorted(test)
