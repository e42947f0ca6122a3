"""Writing a Triton model repository that serves a confroute bundle through the ``bundle_llm`` model.

The shipped ``cloud_service/model_repository/bundle_llm`` is a template without a bundle. A generated
repository holds a copy of its ``1/model.py`` and its ``config.pbtxt`` with the bundle's absolute path,
the thread count and the instance count filled in, and optionally a copy of the echo model::

    folder/
      bundle_llm/config.pbtxt      parameters { key: "bundle" value { string_value: "/abs/bundle" } } ...
      bundle_llm/1/model.py
      echo/...                     (include_echo)

Tests, ``cloud-service triton --bundle DIR`` and the demo use it. Copies rather than links keep the
repository self-contained (it can be baked into an image). A missing bundle is a :class:`BundleNotFound`.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from confroute.bundle.store import MANIFEST_FILE
from confroute.errors import BundleNotFound, InvalidInput

SHIPPED_REPOSITORY = Path(__file__).resolve().parents[1] / "model_repository"
TEMPLATE = SHIPPED_REPOSITORY / "bundle_llm"
ECHO = SHIPPED_REPOSITORY / "echo"
MODEL_NAME = "bundle_llm"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_INSTANCES = "count: 1"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class BundleModel:
    """One bundle served as one Triton model."""

    bundle: Path
    name: str = MODEL_NAME
    threads: int = 2  # onnxruntime intra-op threads per instance
    instances: int = 1  # each runs one request at a time and holds its own copy of the weights
    verify: bool = True  # check the bundle's sha256 sums when the model loads

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name in (".", ".."):
            raise InvalidInput(f"model name {self.name!r} must be letters, digits, '_', '.' or '-'", field="name")
        if self.threads < 1 or self.instances < 1:
            raise InvalidInput("threads and instances must be >= 1", field="threads")


def write_repository(folder: Path, bundle: Path, *, name: str = MODEL_NAME, threads: int = 2,
                     instances: int = 1, verify: bool = True, include_echo: bool = False) -> Path:
    """A repository in ``folder`` (created if needed) serving ``bundle`` as model ``name``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_bundle_model(folder, BundleModel(bundle, name, threads, instances, verify))
    if include_echo:
        shutil.copytree(ECHO, folder / ECHO.name, ignore=_IGNORED, dirs_exist_ok=True)
    return folder


def write_bundle_model(repository: Path, model: BundleModel) -> Path:
    """Writes ``repository/<name>/`` (config and model.py) for ``model``; returns that folder."""
    bundle = model.bundle.expanduser().resolve()
    if not (bundle / MANIFEST_FILE).is_file():
        raise BundleNotFound(f"no confroute bundle at {bundle} (no {MANIFEST_FILE})")
    target = repository / model.name
    (target / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEMPLATE / "1" / "model.py", target / "1" / "model.py")
    (target / "config.pbtxt").write_text(model_config(model, bundle), encoding="utf-8")
    return target


def model_config(model: BundleModel, bundle: Path) -> str:
    """The template's ``config.pbtxt`` with the instance count and the parameters filled in."""
    template = (TEMPLATE / "config.pbtxt").read_text(encoding="utf-8")
    if _INSTANCES not in template:
        raise RuntimeError(f"{TEMPLATE / 'config.pbtxt'} no longer says {_INSTANCES!r} in its instance_group")
    config = template.replace(_INSTANCES, f"count: {model.instances}", 1)
    parameters = {"bundle": str(bundle), "threads": str(model.threads), "verify": str(model.verify).lower()}
    entries = "".join(f"\nparameters {{\n  key: {_quote(key)}\n  value: {{ string_value: {_quote(value)} }}\n}}\n"
                      for key, value in parameters.items())
    return config + entries


def _quote(text: str) -> str:
    """A protobuf text-format string literal (JSON's escapes for quotes and backslashes are the same)."""
    if any(ord(char) < 0x20 for char in text):
        raise InvalidInput(f"{text!r} contains control characters", field="bundle")
    return json.dumps(text, ensure_ascii=False)

