"""``swap_in`` keeps the previous bundle, and what a kill between its renames leaves is settled."""

from __future__ import annotations

import os
from pathlib import Path

from confroute.bundle.store import previous_of, settle_swap, swap_in


def folder(path: Path, label: str) -> Path:
    path.mkdir(parents=True)
    (path / "label").write_text(label)
    return path


def label(path: Path) -> str:
    return (path / "label").read_text()


def test_the_first_swap_installs_and_later_ones_keep_the_bundle_they_replace(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    swap_in(folder(tmp_path / "a", "a"), dest)
    assert label(dest) == "a" and not previous_of(dest).exists()
    swap_in(folder(tmp_path / "b", "b"), dest)
    assert (label(dest), label(previous_of(dest))) == ("b", "a")
    swap_in(folder(tmp_path / "c", "c"), dest)
    assert (label(dest), label(previous_of(dest))) == ("c", "b")


def test_swapping_in_the_previous_bundle_rolls_back_and_again_rolls_forward(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    swap_in(folder(tmp_path / "a", "a"), dest)
    swap_in(folder(tmp_path / "b", "b"), dest)
    swap_in(previous_of(dest), dest)
    assert (label(dest), label(previous_of(dest))) == ("a", "b")
    swap_in(previous_of(dest), dest)
    assert (label(dest), label(previous_of(dest))) == ("b", "a")


def test_a_kill_after_the_old_bundle_moved_aside_puts_it_back(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    folder(dest, "old")
    os.replace(dest, tmp_path / ".bundle.old")  # the swap's first rename, then the kill
    settle_swap(dest)
    assert label(dest) == "old" and not previous_of(dest).exists()


def test_a_kill_after_the_new_bundle_moved_in_keeps_the_old_one_as_previous(tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    folder(previous_of(dest), "older")
    folder(tmp_path / ".bundle.old", "old")
    folder(dest, "new")  # the second rename done, the third not
    settle_swap(dest)
    assert (label(dest), label(previous_of(dest))) == ("new", "old")
    assert not (tmp_path / ".bundle.old").exists()
