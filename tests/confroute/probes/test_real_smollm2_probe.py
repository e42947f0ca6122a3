"""A probe trained on SmolLM2's own right and wrong answers to the arithmetic ladder predicts them.

160 greedy generations of at most 16 tokens (1- and 2-digit questions, where the model is right about a
quarter of the time), both probes, correctness labels. The numbers are printed for docs/routing-quality.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from confroute.engine import Engine
from confroute.probes.data import parse_example
from confroute.probes.train import TrainConfig, train_probes
from confroute.uncertainty.ladder import arithmetic_ladder

pytestmark = [pytest.mark.real_model, pytest.mark.slow]


def test_ladder_correctness_probes_beat_chance_on_held_out_questions(smollm2_int8_bundle: Path) -> None:
    examples = [parse_example(item.to_json()) for item in arithmetic_ladder(160, seed=0, digits=(1, 2))]
    report = train_probes(Engine(smollm2_int8_bundle), examples, TrainConfig(label="correct", max_new_tokens=16),
                          say=print)
    keep_rate = float(report.labels.labels.mean())
    assert 0.1 < keep_rate < 0.6
    for output, fit in report.fits.items():
        print(f"{output}: val AUROC {fit.val_auroc:.3f} (cv {fit.cv_auroc:.3f}), layers {fit.layers}, l2 {fit.l2}")
        assert fit.val_auroc > 0.7, output
