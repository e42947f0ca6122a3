from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.embeddings import Embedder
from confroute.errors import InvalidInput
from confroute.uncertainty.semantic_entropy import (
    best_split_threshold,
    cluster_answers,
    cluster_by_embedding,
    cluster_by_judge,
    cluster_by_key,
    discrete_se,
    dse,
    dse_label,
    likelihood_se,
)

ids_strategy = st.lists(st.integers(0, 6), min_size=1, max_size=12)


def logprobs_for(ids: list[int]) -> st.SearchStrategy[tuple[list[float], list[int]]]:
    n = len(ids)
    return st.tuples(st.lists(st.floats(-50, 0), min_size=n, max_size=n),
                     st.lists(st.integers(0, 30), min_size=n, max_size=n))


@given(ids_strategy, st.randoms())
def test_discrete_se_is_permutation_invariant_and_bounded(ids: list[int], rnd: object) -> None:
    shuffled = list(ids)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    se = discrete_se(ids)
    assert se == pytest.approx(discrete_se(shuffled))
    assert 0.0 <= se <= math.log(len(ids)) + 1e-12


@given(ids_strategy.flatmap(lambda ids: st.tuples(st.just(ids), logprobs_for(ids), st.permutations(range(len(ids))))))
def test_likelihood_se_is_permutation_invariant_and_bounded(case: tuple[list[int], tuple[list[float], list[int]],
                                                                        list[int]]) -> None:
    ids, (logp, counts), order = case
    se = likelihood_se(ids, logp, counts)
    permuted = likelihood_se([ids[i] for i in order], [logp[i] for i in order], [counts[i] for i in order])
    assert se == pytest.approx(permuted, abs=1e-9)
    assert 0.0 <= se <= math.log(len(set(ids))) + 1e-9


@given(st.integers(1, 20), st.integers(-3, 3))
def test_all_same_is_zero_and_all_different_is_log_n(n: int, label: int) -> None:
    assert discrete_se([label] * n) == 0.0
    assert likelihood_se([label] * n, np.linspace(-9, 0, n), [3] * n) == 0.0
    assert discrete_se(list(range(n))) == pytest.approx(math.log(n))
    assert likelihood_se(list(range(n)), [-2.0] * n, [4] * n) == pytest.approx(math.log(n))


def test_likelihood_mass_is_length_normalised() -> None:
    # 4 tokens at -0.5 each beat 1 token at -1.5: per token they are more likely
    ids, logp, counts = [0, 1], [-2.0, -1.5], [4, 1]
    p0 = math.exp(-0.5) / (math.exp(-0.5) + math.exp(-1.5))
    expected = -(p0 * math.log(p0) + (1 - p0) * math.log(1 - p0))
    assert likelihood_se(ids, logp, counts) == pytest.approx(expected)


def test_nan_and_malformed_input_are_rejected() -> None:
    for bad in ([], [0.0, float("nan")], [[0, 1]], [0.5, 1.0], ["a", "b"]):
        with pytest.raises(InvalidInput):
            discrete_se(bad)
    with pytest.raises(InvalidInput):
        likelihood_se([0, 1], [float("nan"), -1.0], [1, 1])
    with pytest.raises(InvalidInput):
        likelihood_se([0, 1], [-1.0], [1, 1])
    with pytest.raises(InvalidInput):
        likelihood_se([0, 1], [0.5, -1.0], [1, 1])
    with pytest.raises(InvalidInput):
        dse(float("nan"), 0.1)


def test_keys_cluster_by_equality_and_unparseable_answers_stand_alone() -> None:
    assert cluster_by_key(["84", None, "84", "12", None]).tolist() == [0, 1, 0, 2, 3]
    samples = ["It is 84.", "84", "84.0!", "I think 48", "no idea"]
    assert cluster_answers(samples, "number").tolist() == [0, 0, 0, 1, 2]
    assert cluster_answers(["The Dog", "dog.", "a cat"], "text").tolist() == [0, 0, 1]


class WordBagEmbedder:
    """A fake embedder: a text's vector counts its (normalised) words over a fixed vocabulary."""

    vocab = ("paris", "france", "capital", "london", "city")

    @property
    def dim(self) -> int:
        return len(self.vocab)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = np.array([[t.lower().count(w) for w in self.vocab] for t in texts], dtype=np.float32) + 1e-3
        unit: npt.NDArray[np.float32] = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
        return unit


def test_embeddings_cluster_free_text_by_cosine_similarity() -> None:
    embedder = WordBagEmbedder()
    assert isinstance(embedder, Embedder)
    texts = ["Paris, France", "paris france", "London city", "the city of London", "Paris"]
    assert cluster_by_embedding(texts, embedder, threshold=0.9).tolist() == [0, 0, 1, 1, 2]
    assert cluster_answers(texts, "text", embedder=embedder, threshold=0.0).tolist() == [0] * 5
    with pytest.raises(InvalidInput):
        cluster_by_embedding(texts, embedder, threshold=2.0)


def test_a_judge_must_agree_both_ways() -> None:
    asked: list[tuple[str, str]] = []

    def judge(a: str, b: str) -> bool:  # one-directional: "a" entails "b" when b is a prefix of a
        asked.append((a, b))
        return a.startswith(b)

    assert cluster_by_judge(["red", "red", "red car", "car"], judge).tolist() == [0, 0, 1, 2]
    assert ("red", "red") not in asked  # identical strings need no judge


@pytest.mark.parametrize(("strong", "weak", "expected"), [
    (1.0, 0.2, 0.8), (1.0, 1.0, 0.0), (0.5, 1.0, -1.0), (0.0, 0.0, 0.0), (0.0, 0.3, -math.inf),
])
def test_dse_and_its_zero_conventions(strong: float, weak: float, expected: float) -> None:
    assert dse(strong, weak) == pytest.approx(expected)


def test_the_weak_model_wins_only_when_clearly_less_uncertain() -> None:
    assert dse_label(1.0, 0.2, tau=0.5) == "weak"
    assert dse_label(1.0, 0.6, tau=0.5) == "tie"
    assert dse_label(1.0, 0.5, tau=0.5) == "tie"  # dSE == tau is not "clearly"
    assert dse_label(0.0, 0.0, tau=0.0) == "tie"
    assert dse_label(0.0, 0.0, tau=-0.1) == "weak"
    with pytest.raises(InvalidInput):
        dse_label(1.0, 0.5, tau=float("inf"))


def test_the_best_split_separates_two_groups_and_never_splits_ties() -> None:
    assert best_split_threshold([0.0, 0.1, 0.0, 1.5, 1.6, 0.05]) == pytest.approx(0.1)
    assert best_split_threshold([0.0, 0.0, 0.0, 1.0]) == 0.0
    assert best_split_threshold([0.7, 0.7]) == 0.7


@given(st.lists(st.floats(0, 5), min_size=1, max_size=30))
def test_the_best_split_is_one_of_the_values_and_leaves_a_low_group(values: list[float]) -> None:
    threshold = best_split_threshold(values)
    assert threshold in values
    assert any(v <= threshold for v in values)
