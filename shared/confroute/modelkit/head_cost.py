"""What the fused head and probes cost, measured where they live: onnxruntime's per-node profile of many
decode steps of one session, the head's nodes against the whole step, in one process.

Comparing whole steps of a graph with and without the head, in different processes, drowns a cost of
~1-2% in the differences between processes (on a 2-core AVX2 EPYC one quick run put it at +6% and a long
one at -10%). Here both numbers come from the same runs: the head is every node that neither the logits
nor the KV cache need (the head's reductions and argmax, the probes' concat, gather and Gemm), found on
the bundle's graph; ``step_us`` is the median ``model_run`` of the profiled decode steps. Profiling adds
a little to every node, so the share is a slight over-estimate for graphs of many small nodes.

    python -m confroute.modelkit.head_cost BUNDLE [--steps 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx

_DECODER_OUTPUTS = ("logits", "present.")
_ENGINE_OUTPUTS = ("next_token", "entropy", "max_prob", "argmax_logprob", "probe")


@dataclasses.dataclass(frozen=True)
class HeadCost:
    """Per decode step, medians over the steps (a step another process delays says nothing): the whole
    step, the time in head nodes, in nodes the profile names but the graph does not (counted as decoder),
    and the head's share of its own step."""

    steps: int
    step_us: float
    head_us: float
    unmatched_us: float
    head_pct: float
    head_nodes: int

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in dataclasses.asdict(self).items()}


def head_nodes(model: onnx.ModelProto) -> set[str]:
    """Names of the nodes that neither ``logits`` nor the KV-cache outputs depend on."""
    producer = {out: node for node in model.graph.node for out in node.output}
    needed: set[str] = set()
    stack = [o.name for o in model.graph.output if o.name.startswith(_DECODER_OUTPUTS)]
    while stack:
        node = producer.get(stack.pop())
        if node is None or node.name in needed:
            continue
        needed.add(node.name)
        stack.extend(node.input)
    return {node.name for node in model.graph.node if node.name not in needed}


def measure(bundle: Path, steps: int = 200, threads: int = 2, prompt_tokens: int = 20) -> HeadCost:
    """Profiles a prefill of ``prompt_tokens`` and ``steps`` decode steps; reports the decode steps."""
    model = onnx.load(str(bundle / "model.onnx"), load_external_data=False)
    head = head_nodes(model)
    with tempfile.TemporaryDirectory(prefix="confroute-profile-") as tmp:
        events = _profiled_run(bundle, model, steps, threads, prompt_tokens, Path(tmp))
    return summarize(events, head, {node.name for node in model.graph.node}, skip_runs=2)


def summarize(events: list[dict[str, Any]], head_names: set[str], graph_nodes: set[str],
              skip_runs: int) -> HeadCost:
    """Head/step figures from a profile's events, leaving out the first ``skip_runs`` runs (the prefill
    and a warm-up step). A fused node counts where its first node is (see :func:`_graph_name`); nodes
    the profile names that ``graph_nodes`` still lacks count as decoder, their time as ``unmatched_us``."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: int(e["ts"]))[skip_runs:]
    if not runs:
        raise ValueError("the profile holds no decode steps")
    starts = np.asarray([int(r["ts"]) for r in runs])
    ends = starts + np.asarray([int(r["dur"]) for r in runs])
    head = np.zeros(len(runs))
    unmatched = np.zeros(len(runs))
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        i = int(np.searchsorted(starts, int(e["ts"]), side="right")) - 1
        if i < 0 or int(e["ts"]) > ends[i]:
            continue
        node = _graph_name(str(e["name"]).removesuffix("_kernel_time"))
        if node in head_names:
            head[i] += float(e["dur"])
        elif node not in graph_nodes:
            unmatched[i] += float(e["dur"])
    steps = (ends - starts).astype(np.float64)
    return HeadCost(steps=len(runs), step_us=float(np.median(steps)), head_us=float(np.median(head)),
                    unmatched_us=float(np.median(unmatched)), head_pct=float(100.0 * np.median(head / steps)),
                    head_nodes=len(head_names))


def _graph_name(profiled: str) -> str:
    """The graph node a profiled kernel ran for: onnxruntime names a fused node ``fused <first node>``
    (the probe's Gemm + Sigmoid) or ``<first node>/<Fusion>/`` (SiLU's Mul + Sigmoid as QuickGelu)."""
    return profiled.removeprefix("fused ").split("/", 1)[0]


def _profiled_run(bundle: Path, model: onnx.ModelProto, steps: int, threads: int, prompt_tokens: int,
                  folder: Path) -> list[dict[str, Any]]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = str(folder / "profile")
    session = ort.InferenceSession(str(bundle / "model.onnx"), so, providers=["CPUExecutionProvider"])
    _decode(ort, session, model, steps, prompt_tokens)
    profile = Path(session.end_profiling())
    return list(json.loads(profile.read_text(encoding="utf-8")))


def _decode(ort: Any, session: Any, model: onnx.ModelProto, steps: int, prompt_tokens: int) -> None:
    """Greedy steps as the engine runs them: one KV buffer per layer bound as past and present."""
    pasts = [i for i in session.get_inputs() if i.name.startswith("past_key_values.")]
    capacity = prompt_tokens + steps + 1
    io = session.io_binding()
    for past in pasts:
        value = ort.OrtValue.ortvalue_from_shape_and_type([1, past.shape[1], capacity, past.shape[3]], np.float32)
        io.bind_ortvalue_input(past.name, value)
        io.bind_ortvalue_output(past.name.replace("past_key_values", "present"), value)
    outputs = {o.name for o in model.graph.output}
    # what the engine fetches each step: the head's scalars, or the logits of a graph without a head
    wanted = [n for n in _ENGINE_OUTPUTS if n in outputs] or ["logits"]
    for name in wanted:
        io.bind_output(name)
    mask = np.ones((1, capacity), dtype=np.int64)
    ids = np.arange(10, 10 + prompt_tokens, dtype=np.int64)[None]
    for length in range(prompt_tokens, capacity):
        io.bind_cpu_input("input_ids", ids)
        io.bind_cpu_input("attention_mask", mask[:, :length])
        session.run_with_iobinding(io)
        first = io.get_outputs()[0].numpy()
        token = int(first.reshape(-1)[0]) if wanted[0] == "next_token" else int(first[0].argmax())
        ids = np.asarray([[token]], dtype=np.int64)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m confroute.modelkit.head_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.bundle, args.steps, args.threads).to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
