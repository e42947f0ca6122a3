"""The exported graph computes what transformers computes, for each supported architecture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from confroute.engine import Engine, SamplingParams
from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.sources import load_hf_folder, load_hub

pytestmark = pytest.mark.slow
QUIET = lambda _m: None  # noqa: E731
PROMPTS = [[5, 17, 42, 99, 7, 3], [100, 200, 30], [11] * 20]


@pytest.fixture(scope="module")
def exported(hf_folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exported")
    return {arch: _export(folder, root / arch) for arch, folder in hf_folders.items()}


def _export(folder: Path, dest: Path) -> Path:
    export_bundle(load_hf_folder(folder, QUIET), dest, ExportOptions(), QUIET)
    return dest


def _torch_logits(folder: Path, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    with torch.no_grad():
        logits: np.ndarray = model(torch.tensor([ids])).logits[0, -1].numpy()
    return logits


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_logits_match_transformers(arch: str, exported: dict[str, Path], hf_folders: dict[str, Path]) -> None:
    engine = Engine(exported[arch])
    for ids in PROMPTS:
        step = engine.decoder.forward(engine.decoder.new_cache(), np.asarray([ids]), logits=True)
        assert step.logits is not None
        np.testing.assert_allclose(step.logits, _torch_logits(hf_folders[arch], ids), atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_the_fused_head_equals_numpy_on_the_logits(arch: str, exported: dict[str, Path]) -> None:
    engine = Engine(exported[arch])
    step = engine.decoder.forward(engine.decoder.new_cache(), np.asarray([PROMPTS[0]]), logits=True)
    assert step.logits is not None
    z = step.logits.astype(np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    assert step.entropy == pytest.approx(-(p * np.log(p)).sum(), abs=1e-4)
    assert step.max_prob == pytest.approx(p.max(), rel=1e-5)
    assert step.argmax_logprob == pytest.approx(np.log(p.max()), abs=1e-5)
    assert step.next_token == int(z.argmax())


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_greedy_generation_matches_transformers(arch: str, exported: dict[str, Path],
                                               hf_folders: dict[str, Path]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_folders[arch], dtype=torch.float32)
    engine = Engine(exported[arch])
    for ids in PROMPTS:
        ours = engine.generate(ids, SamplingParams(max_new_tokens=12, ignore_eos=True)).token_ids
        with torch.no_grad():
            ref = model.generate(torch.tensor([ids]), max_new_tokens=12, min_new_tokens=12, do_sample=False,
                                 pad_token_id=2)
        assert list(ours) == ref[0, len(ids):].tolist()


def test_a_hub_id_loads_through_the_same_path_as_a_folder(hf_folders: dict[str, Path], tmp_path: Path) -> None:
    # The hub cannot be reached here; from_pretrained treats an existing path like a downloaded snapshot.
    source = load_hub(str(hf_folders["llama"]), QUIET)
    assert source.info.kind == "hub"
    export_bundle(source, tmp_path / "b", ExportOptions(), QUIET)
    assert Engine(tmp_path / "b").generate([1, 2, 3], SamplingParams(max_new_tokens=2)).prompt_tokens == 3
