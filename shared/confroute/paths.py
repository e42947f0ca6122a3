"""Where confroute caches model sources and bundles (``~/.cache/confroute`` by default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_dir(env: Mapping[str, str]) -> Path:
    """``$CONFROUTE_CACHE_DIR``, else ``$XDG_CACHE_HOME/confroute``, else ``~/.cache/confroute``.

    Takes the environment as an argument: ``main()`` passes ``os.environ``, tests pass what they need.
    """
    if explicit := env.get("CONFROUTE_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "confroute"


def default_bundle_dir(cache: Path, quantized: bool) -> Path:
    return cache / "bundles" / ("smollm2-135m-instruct-int8" if quantized else "smollm2-135m-instruct")
