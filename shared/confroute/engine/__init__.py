"""Generation over a model bundle with onnxruntime: KV cache, greedy or top-p sampling, stop strings,
token streaming, and the fused head's per-token signals and probe scores.

Both sides use it: the edge agent answers with it, the cloud's Triton model serves a bundle with it.
"""

from confroute.engine.engine import Engine, GenerationRun, Prefix
from confroute.engine.params import SamplingParams
from confroute.engine.result import Generation, TokenEvent
from confroute.engine.session import RuntimeOptions

__all__ = ["Engine", "Generation", "GenerationRun", "Prefix", "RuntimeOptions", "SamplingParams", "TokenEvent"]
