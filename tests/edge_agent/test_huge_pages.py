"""edge_agent.huge_pages: glibc's huge-page malloc tunable, added by re-executing the process once."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent import huge_pages
from edge_agent.huge_pages import HUGETLB, TUNABLE, environment_with_huge_pages, thp_mode


@pytest.mark.parametrize(("text", "mode"), [
    ("always [madvise] never\n", "madvise"), ("[always] madvise never", "always"),
    ("always madvise [never]\n", "never"), ("garbage", None)])
def test_the_thp_mode_is_the_bracketed_word(tmp_path: Path, text: str, mode: str | None) -> None:
    path = tmp_path / "enabled"
    path.write_text(text)
    assert thp_mode(path) == mode


def test_no_thp_file_means_no_mode(tmp_path: Path) -> None:
    assert thp_mode(tmp_path / "missing") is None


def test_the_tunable_is_added_to_whatever_tunables_are_set() -> None:
    assert environment_with_huge_pages({"A": "1"}, "madvise") == {"A": "1", "GLIBC_TUNABLES": TUNABLE}
    assert environment_with_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "always") == {
        "GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}"}
    assert TUNABLE == "glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=33554432"


def test_a_threshold_the_process_set_is_kept() -> None:
    mine = "glibc.malloc.mmap_threshold=1048576"
    assert environment_with_huge_pages({"GLIBC_TUNABLES": mine}, "madvise") == {"GLIBC_TUNABLES": f"{mine}:{HUGETLB}"}


@pytest.mark.parametrize(("environ", "mode"), [({}, "never"), ({}, None),
                                               ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "madvise"),
                                               ({"GLIBC_TUNABLES": TUNABLE}, "madvise")])
def test_nothing_is_done_without_thp_or_once_the_process_chose(environ: dict[str, str], mode: str | None) -> None:
    assert environment_with_huge_pages(environ, mode) is None


def test_active_reads_this_process_environment() -> None:
    assert huge_pages.active({"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}"})
    assert huge_pages.active({"GLIBC_TUNABLES": HUGETLB})
    assert not huge_pages.active({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})
    assert not huge_pages.active({})


def test_a_process_re_executes_itself_once_with_the_tunable() -> None:
    code = ("import os; from edge_agent import huge_pages; print('start', flush=True); "
            "huge_pages.reexec_with_huge_pages(); print(os.environ.get('GLIBC_TUNABLES', ''))")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         timeout=60).stdout.split()
    expected = platform.libc_ver()[0] == "glibc" and thp_mode() not in (None, "never")
    assert out == (["start", "start", TUNABLE] if expected else ["start", ""])
