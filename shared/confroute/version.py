"""The installed confroute's version, and the ``--version`` flag every entry point shares."""

from __future__ import annotations

import argparse
from importlib import metadata

UNKNOWN = "0+unknown"  # running from a source tree that was never installed


def version() -> str:
    """The version of the installed ``confroute`` distribution."""
    try:
        return metadata.version("confroute")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def add_version_flag(parser: argparse.ArgumentParser) -> None:
    """``--version``: prints ``PROG VERSION`` and exits 0."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
