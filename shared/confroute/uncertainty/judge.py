"""A language model as the equivalence judge of semantic-entropy clustering (e.g. the local cloud model).

``engine_judge(engine, question)`` returns a :data:`~confroute.uncertainty.semantic_entropy.Judge`:
``judge(a, b)`` asks, greedily, whether answer ``a`` entails answer ``b`` (the one-directional question of
Kuhn et al.'s entailment prompt, with a yes/no reply instead of an NLI label); ``cluster_by_judge`` asks
both directions. The reply counts as "yes" when its first word is "yes". Replies are cached per pair,
so re-clustering the same answers costs nothing.
"""

from __future__ import annotations

from confroute.engine import Engine, SamplingParams
from confroute.uncertainty.semantic_entropy import Judge

PROMPT = ("We are evaluating answers to the question: {question}\n"
          "Possible answer 1: {a}\nPossible answer 2: {b}\n"
          "Does possible answer 1 semantically entail possible answer 2? Reply with yes or no only.")


def engine_judge(engine: Engine, question: str, *, max_new_tokens: int = 3) -> Judge:
    """A judge asking ``engine`` about answers to ``question`` (see the module docstring)."""
    cache: dict[tuple[str, str], bool] = {}
    params = SamplingParams(max_new_tokens=max_new_tokens)

    def judge(a: str, b: str) -> bool:
        if (a, b) not in cache:
            content = PROMPT.format(question=question, a=a.strip(), b=b.strip())
            reply = engine.chat([{"role": "user", "content": content}], params).text
            words = reply.strip().lower().split()
            cache[(a, b)] = bool(words) and words[0].strip(".,!") == "yes"
        return cache[(a, b)]

    return judge
