"""What an acknowledged write to Redis promises, decided once when a writer starts.

An outcome the service acknowledges is deleted from the device's outbox, so "acknowledged" must mean
"survives the failures the docs promise to survive" (``docs/faults.md``). The writer asks the server:

1. ``CONFIG GET appendonly appendfsync``. Where the ACL or a managed service refuses ``CONFIG`` (NOPERM,
   or the command renamed away), ``INFO persistence`` instead: its ``aof_enabled`` says whether the AOF is
   on, and the fsync policy is then unknown (reported as such, read as Redis's default ``everysec``).
   If both are refused the persistence cannot be verified, which counts as none.
2. ``WAITAOF 1 0 <ms>`` on a connection that wrote nothing (it returns at once where the command exists:
   Redis >= 7.2, valkey). Where it exists, each acknowledged batch is followed by ``WAITAOF 1 0`` on the
   connection that wrote it, so the acknowledgement waits for the fsync of the AOF (up to ~1 s with
   ``appendfsync everysec``): the batch survives a Redis crash and a power cut. Where it does not, the
   batch is acknowledged when the write returns. With ``always`` or ``no`` Redis has then written it to its
   AOF (the OS page cache), so it survives a Redis crash (SIGKILL). With ``everysec`` it usually has too,
   but while the previous second's fsync is still running (a busy disk) Redis postpones the write for up to
   2 s and replies meanwhile: a crash then loses those acknowledged writes (the fault suite saw one outcome
   lost so, in three runs on a loaded machine). The fsync policy bounds what a power cut or kernel crash can
   lose: nothing with ``always``, about the last 1-2 s with ``everysec``, up to ~30 s with ``no``.

That promise is logged when the writer starts, as a warning where a crash can lose acknowledged writes
(:attr:`Persistence.crash_safe` false: ``everysec`` or an unreadable policy, without ``WAITAOF``).

A server without AOF loses every acknowledged write when it restarts (RDB snapshots alone lose everything
since the last one), so :func:`require_durable` refuses it unless the operator passed the explicit
``--allow-volatile-redis``, and then logs a loud warning. In a Redis Cluster every primary is asked, and
the weakest answer counts; ``WAITAOF`` is not issued there (the cluster pipeline splits a batch per node),
so the fsync policy bounds the loss.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoPermissionError, ResponseError

from cloud_service.redis_client import RedisClient, translated
from confroute.errors import Unavailable

logger = logging.getLogger(__name__)

ALLOW_FLAG = "--allow-volatile-redis"
WAITAOF_PROBE_MS = 100
CRASH_SAFE_FSYNC = ("always", "no")  # Redis writes its AOF before replying (the fsync is another matter)
_LOSS_ON_POWER_CUT = {"always": "nothing", "everysec": "about the last 1-2 s of acknowledged writes",
                      "no": "up to ~30 s of acknowledged writes (the kernel's writeback interval)"}


@dataclass(frozen=True)
class Persistence:
    """What one server (or the weakest primary of a cluster) says about its persistence.

    ``aof`` is None when it could not be read (CONFIG and INFO both refused); ``fsync`` is None when only
    ``INFO`` could be read. ``waitaof``: the server has ``WAITAOF`` and this user may run it.
    """

    aof: bool | None
    fsync: str | None
    waitaof: bool
    via: str

    @property
    def durable(self) -> bool:
        return self.aof is True

    @property
    def crash_safe(self) -> bool:
        """Whether an acknowledged write survives a Redis crash: WAITAOF, or an fsync policy under which
        Redis never replies before writing its AOF (``always``; ``no`` writes at once and leaves the fsync
        to the kernel)."""
        return self.durable and (self.waitaof or self.fsync in CRASH_SAFE_FSYNC)

    def promise(self) -> str:
        """One sentence: what an acknowledged write survives."""
        if not self.durable:
            return "nothing: an acknowledged write is lost when Redis restarts (no AOF)"
        if self.waitaof:
            return "a Redis crash and a power cut: each acknowledgement waits for the AOF fsync (WAITAOF 1 0)"
        fsync = self.fsync or "everysec"
        known = "" if self.fsync else " (fsync policy unreadable, Redis's default assumed)"
        crash = ("a Redis crash, except while a slow fsync postpones the AOF write (up to ~2 s of acknowledged "
                 "writes: use appendfsync always, or Redis >= 7.2 for WAITAOF)" if fsync == "everysec"
                 else "a Redis crash (the AOF holds it)")
        return f"{crash}; a power cut can lose {_LOSS_ON_POWER_CUT.get(fsync, 'more')} (appendfsync {fsync}{known})"


@dataclass(frozen=True)
class AckPolicy:
    """How a writer makes a batch durable before acknowledging it: ``wait_aof_ms`` > 0 issues
    ``WAITAOF 1 0 wait_aof_ms`` after the batch, on its connection; 0 relies on the fsync policy."""

    persistence: Persistence
    wait_aof_ms: int = 0


async def inspect(client: RedisClient) -> Persistence:
    """Asks the server (every primary of a cluster) how it persists writes."""
    with translated("reading the persistence settings"):
        if isinstance(client, RedisCluster):
            await client.initialize()  # learns the primaries (a no-op once it knows them)
            answers = [await _inspect_node(client, node) for node in client.get_primaries()]
            return _weakest(answers)
        return await _inspect_node(client, None)


async def ack_policy(client: RedisClient, *, allow_volatile: bool, wait_aof_ms: int) -> AckPolicy:
    """The policy for acknowledging writes to ``client``'s server: :func:`inspect` then :func:`decide`.
    Raises ``Unavailable`` when the server cannot be reached, or is refused."""
    persistence = await inspect(client)
    return decide(persistence, cluster=isinstance(client, RedisCluster), allow_volatile=allow_volatile,
                  wait_aof_ms=wait_aof_ms)


def decide(persistence: Persistence, *, cluster: bool, allow_volatile: bool, wait_aof_ms: int) -> AckPolicy:
    """The policy for acknowledging writes to a server that answered ``persistence``, after
    :func:`require_durable`; logs what an acknowledgement then promises."""
    require_durable(persistence, allow_volatile=allow_volatile)
    waiting = wait_aof_ms if persistence.waitaof and not cluster else 0
    safe = persistence.durable and (waiting > 0 or persistence.fsync in CRASH_SAFE_FSYNC)  # a cluster: no WAITAOF
    log = logger.info if safe else logger.warning
    log("Redis persistence (%s): an acknowledged outcome survives %s", persistence.via, persistence.promise())
    return AckPolicy(persistence, waiting)


def require_durable(persistence: Persistence, *, allow_volatile: bool) -> None:
    """Raises ``Unavailable`` for a server without AOF, unless ``allow_volatile`` (then warns loudly)."""
    if persistence.durable:
        return
    reason = ("its persistence settings cannot be read (CONFIG GET and INFO refused: grant this user "
              "+config|get or +info)" if persistence.aof is None else "it runs without an append-only file")
    if not allow_volatile:
        raise Unavailable(f"refusing to acknowledge outcomes on this Redis: {reason}. Run it with "
                          f"--appendonly yes (appendfsync everysec or always), or pass {ALLOW_FLAG} to accept "
                          "losing every acknowledged outcome and policy when Redis restarts")
    logger.warning("VOLATILE REDIS (%s given): %s; every acknowledged outcome and every policy is LOST when "
                   "Redis restarts", ALLOW_FLAG, reason)


async def _inspect_node(client: Any, node: Any) -> Persistence:
    target = {"target_nodes": node} if node is not None else {}
    aof, fsync, via = await _read_settings(client, target)
    waitaof = bool(aof) and await _has_waitaof(client, target)
    return Persistence(aof, fsync, waitaof, via)


async def _read_settings(client: Any, target: Mapping[str, Any]) -> tuple[bool | None, str | None, str]:
    try:
        settings = _text_map(await client.config_get("append*", **target))
        return settings.get("appendonly") == "yes", settings.get("appendfsync"), "CONFIG GET"
    except (NoPermissionError, ResponseError):  # ACL, or CONFIG renamed away by a managed service
        pass
    try:
        info = await client.info("persistence", **target)
    except (NoPermissionError, ResponseError):
        return None, None, "nothing readable"
    return str(info.get("aof_enabled", 0)) == "1", None, "INFO persistence"


async def _has_waitaof(client: Any, target: Mapping[str, Any]) -> bool:
    """True when ``WAITAOF`` runs: on a connection that wrote nothing it answers at once."""
    try:
        await client.execute_command("WAITAOF", 1, 0, WAITAOF_PROBE_MS, **target)
    except (NoPermissionError, ResponseError):  # unknown command (Redis < 7.2), or not permitted
        return False
    return True


def _text_map(reply: Mapping[Any, Any]) -> dict[str, str]:
    return {_text(key): _text(value) for key, value in reply.items()}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _weakest(answers: list[Persistence]) -> Persistence:
    if not answers:
        return Persistence(None, None, False, "no primary reachable")
    rank = {"always": 0, "everysec": 1, None: 1, "no": 2}
    worst = max(answers, key=lambda p: (0 if p.aof else 1 if p.aof is False else 2, rank.get(p.fsync, 3)))
    return Persistence(worst.aof, worst.fsync, all(p.waitaof for p in answers), worst.via)
