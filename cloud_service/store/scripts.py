"""Confroute's Lua scripts, read from the ``lua/`` files beside this module, and how they are run.

A script may need library files (``fold.lua``: the statistics fold); its text is the libraries followed
by its own file, and that text's SHA-1 is what ``EVALSHA`` names. A server that does not know the script
(restarted, failed over, or another node) answers NOSCRIPT before running anything, so the script is
loaded and the call sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from cloud_service.redis_client import RedisClient

# Each script's library files, prepended in this order.
_LIBRARIES = {
    "append_once": ("fold",),
    "label_once": ("fold",),
    "fold_and_ack": ("fold",),
    "transition": (),
    "token_bucket": (),
}
NAMES = tuple(_LIBRARIES)

Arg = str | bytes | int | float


@dataclass(frozen=True)
class LuaScript:
    """One script: its name, full text and SHA-1."""

    name: str
    source: str

    @cached_property  # asked for once per queued call: hashing the text each time showed in the profile
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()

    async def run(self, client: RedisClient, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """``EVALSHA``, loading the script first where the server does not know it. redis-py errors pass
        through: callers translate them (``cloud_service.redis_client.translated``)."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Arg]) -> None:
        """Adds an ``EVALSHA`` of this script to a pipeline (load it first with :meth:`load`).

        ``execute_command`` rather than ``evalsha()``: redis-py's cluster pipeline refuses the latter by
        name, though each call touches one slot and routes like any keyed command.
        """
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    async def load(self, client: RedisClient) -> None:
        await client.script_load(self.source)


@cache
def script(name: str) -> LuaScript:
    """The script ``name`` (one of :data:`NAMES`), read once from the package."""
    if name not in _LIBRARIES:
        raise KeyError(f"no Lua script {name!r}; known: {', '.join(NAMES)}")
    parts = [*_LIBRARIES[name], name]
    return LuaScript(name, "".join(_read(part) for part in parts))


def _read(name: str) -> str:
    return resources.files("cloud_service.store").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
