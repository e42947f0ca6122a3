"""Fixtures shared by the whole suite: tiny bundles (seconds, no torch) and the real SmolLM2 bundles
(built once per machine into the cache, then reused)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from confroute.modelkit.export import ExportOptions, export_bundle
from confroute.modelkit.tiny import tiny_source
from confroute.paths import cache_dir, default_bundle_dir

_QUIET = lambda _message: None  # noqa: E731


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32 tiny random bundles of each supported family."""
    root = tmp_path_factory.mktemp("tiny-bundles")
    bundles = {}
    for arch in ("llama", "qwen2", "gpt2"):
        export_bundle(tiny_source(arch), root / arch, ExportOptions(), _QUIET)
        bundles[arch] = root / arch
    return bundles


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    """A fresh tiny llama bundle a test may modify."""
    export_bundle(tiny_source("llama"), tmp_path / "bundle", ExportOptions(), _QUIET)
    return tmp_path / "bundle"


def _real_bundle(quantized: bool) -> Path:
    from confroute.bundle.store import needs_export
    from confroute.modelkit.export import EDGE_INT8
    from confroute.modelkit.sources import load_default

    cache = cache_dir(os.environ)
    dest = default_bundle_dir(cache, quantized)
    if needs_export(dest):
        options = ExportOptions(quantization=EDGE_INT8 if quantized else None)
        export_bundle(load_default(cache, _QUIET), dest, options, _QUIET)
    return dest


@pytest.fixture(scope="session")
def smollm2_bundle() -> Path:
    return _real_bundle(quantized=False)


@pytest.fixture(scope="session")
def smollm2_int8_bundle() -> Path:
    return _real_bundle(quantized=True)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from confroute.modelkit.sources import fetch_default_gguf

    return fetch_default_gguf(cache_dir(os.environ), _QUIET)


# Tiers that run only when named in ``-m`` (emulated CPUs: minutes to hours, root and binfmt_misc for arm64).
OPT_IN_TIERS = {
    "haswell": "the emulated AVX2 tier runs only when selected: pytest -m haswell (make test-haswell)",
    "aarch64": "the emulated arm64 tier runs only when selected: pytest -m aarch64",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips the opt-in tiers unless ``-m`` names them, whatever other marker expression is given."""
    selected = config.option.markexpr or ""
    for tier, reason in OPT_IN_TIERS.items():
        if tier in selected:
            continue
        for item in items:
            if tier in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))
