"""Tiny Hugging Face folders (random weights, saved with transformers) for the exporter's folder path."""

from __future__ import annotations

from pathlib import Path

import pytest

from confroute.modelkit.tiny import CHATML_TEMPLATE, tiny_tokenizer_json

CONFIGS = {
    "llama": dict(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True, eos_token_id=2),
    "qwen2": dict(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False, eos_token_id=2),
    "gpt2": dict(vocab_size=320, n_embd=64, n_layer=3, n_head=4, n_positions=128, eos_token_id=2, bos_token_id=2),
}


def make_hf_folder(arch: str, folder: Path) -> Path:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    config = AutoConfig.for_model(arch, **CONFIGS[arch])
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    with torch.no_grad():  # larger than default init so the logits are not all near-uniform
        for param in model.parameters():
            if param.dim() > 1:
                param.mul_(4.0)
    model.save_pretrained(folder)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=Tokenizer.from_str(tiny_tokenizer_json()), eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {arch: make_hf_folder(arch, root / f"tiny-{arch}") for arch in CONFIGS}
