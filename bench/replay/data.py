"""RouteLLM's published per-query outcomes (weak = Mixtral-8x7B-Instruct, strong = GPT-4-1106-preview).

Read from ``<data>/routellm/`` (schemas in ``<data>/MANIFEST.md``), with RouteLLM's own conventions
(routellm/evals/benchmarks.py): contaminated prompts are dropped by exact prompt text; MMLU subjects are
concatenated; MT-Bench is routed on the first turn and a question's quality is the mean GPT-4 judge score
of its two turns.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from confroute.errors import InvalidInput

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class ReplayData:
    """One benchmark's queries with the weak and strong models' quality (1/0, or a 1-10 judge score).

    ``group`` is a per-query category known before generation (MMLU subject, MT-Bench category; 0 for
    GSM8K); ``weak_answer`` is the weak model's response where the data hold it (post-generation routing).
    """

    name: str
    prompts: tuple[str, ...]
    weak: FloatArray
    strong: FloatArray
    group: IntArray
    group_names: tuple[str, ...]
    weak_answer: tuple[str, ...] | None
    dropped: int

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: IntArray) -> ReplayData:
        answers = tuple(self.weak_answer[i] for i in index) if self.weak_answer is not None else None
        return ReplayData(self.name, tuple(self.prompts[i] for i in index), self.weak[index], self.strong[index],
                          self.group[index], self.group_names, answers, self.dropped)


def _contaminated(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.is_file():
        raise InvalidInput(f"{path} is missing; is the data folder complete?", field="data")
    with open(path, encoding="utf-8") as f:
        return {json.loads(line)["eval_prompt"] for line in f if line.strip()}


def _bool(value: str) -> float:
    if value not in ("True", "False"):
        raise InvalidInput(f"expected True/False, got {value!r}", field="data")
    return 1.0 if value == "True" else 0.0


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise InvalidInput(f"{path} is missing; is the data folder complete?", field="data")
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def load_gsm8k(root: Path) -> ReplayData:
    folder = root / "routellm" / "gsm8k"
    rows = _read_csv(folder / "gsm8k_responses.csv")
    bad = _contaminated(folder)
    kept = [r for r in rows if r["prompt"] not in bad]
    return ReplayData("gsm8k", tuple(r["prompt"] for r in kept), np.array([_bool(r[WEAK]) for r in kept]),
                      np.array([_bool(r[STRONG]) for r in kept]), np.zeros(len(kept), dtype=np.int64), ("all",),
                      tuple(r[WEAK + "_response"] for r in kept), len(rows) - len(kept))


def load_mmlu(root: Path) -> ReplayData:
    folder = root / "routellm" / "mmlu"
    files = sorted((folder / "responses").glob("mmlu_*.csv"))
    if not files:
        raise InvalidInput(f"no MMLU response files under {folder / 'responses'}", field="data")
    bad = _contaminated(folder)
    prompts: list[str] = []
    weak: list[float] = []
    strong: list[float] = []
    group: list[int] = []
    total = 0
    for g, path in enumerate(files):
        rows = _read_csv(path)
        total += len(rows)
        for r in rows:
            if r["prompt"] not in bad:
                prompts.append(r["prompt"])
                weak.append(_bool(r[WEAK]))
                strong.append(_bool(r[STRONG]))
                group.append(g)
    names = tuple(p.stem.removeprefix("mmlu_") for p in files)
    return ReplayData("mmlu", tuple(prompts), np.array(weak), np.array(strong), np.array(group, dtype=np.int64),
                      names, None, total - len(prompts))


def load_mt_bench(root: Path) -> ReplayData:
    folder = root / "routellm" / "mt_bench"
    bad = _contaminated(folder)
    with open(folder / "question.jsonl", encoding="utf-8") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    kept = [q for q in questions if not (set(q["turns"][:2]) & bad)]
    scores: dict[tuple[int, str], list[float]] = defaultdict(list)
    with open(folder / "judgements.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                scores[(int(j["question_id"]), j["model"])].append(float(j["score"]))
    categories = tuple(sorted({q["category"] for q in kept}))

    def mean_score(qid: int, model: str) -> float:
        if not scores[(qid, model)]:
            raise InvalidInput(f"MT-Bench question {qid} has no judgement for {model}", field="data")
        return float(np.mean(scores[(qid, model)]))

    return ReplayData("mt_bench", tuple(q["turns"][0] for q in kept),
                      np.array([mean_score(q["question_id"], WEAK) for q in kept]),
                      np.array([mean_score(q["question_id"], STRONG) for q in kept]),
                      np.array([categories.index(q["category"]) for q in kept], dtype=np.int64), categories,
                      None, len(questions) - len(kept))


LOADERS = {"mt_bench": load_mt_bench, "gsm8k": load_gsm8k, "mmlu": load_mmlu}


def shuffled(data: ReplayData, seed: int = 0) -> ReplayData:
    """The rows in a seeded random order: any prefix is a uniform subsample (``--quick``, cached chunks)."""
    return data.subset(np.random.default_rng(seed).permutation(len(data)).astype(np.int64))
