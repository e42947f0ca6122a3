"""Confroute's Redis key schema: every key name and hash tag is built here, and a partition tag parsed here.

A *partition* is one (edge model version, cohort). Its keys share one Redis Cluster hash tag, so the Lua
scripts that touch a stream, its statistics and its policies never cross slots:

    <outcomes>:{<tag>}:stream               the outcome entries (XADD; consumer groups read it)
    <outcomes>:{<tag>}:seen:<origin>:<qid>  dedupe marker, value: the entry id (TTL)
    <outcomes>:{<tag>}:stats:<mode>         prefix of one routing mode's histograms (see ``outcomes.statistics``):
                                            ``:<sig>:n``, ``:<sig>:w:<label>``, ``:<sig>:t`` and ``:meta``
    <outcomes>:{<tag>}:labelled:<qid>       late-label marker: the label moved once (TTL)
    <outcomes>:{<tag>}:folded:<qid>         set by the worker's fold of an entry not folded at ingest
    <outcomes>:{<tag>}:arm:<policy>         label totals of the records one policy version routed
    <outcomes>:{<tag>}:labels               late labels written back (judge, gold)
    <outcomes>:{<tag>}:recalibrations       provenance of each recalibration (published or refused)
    <outcomes>:partitions                   a set of the partition tags (its own slot)
    <policy>:{<tag>}:policies               the rollout history stream of one partition
    <policy>:{<tag>}:versions               hash: version -> the policy's bytes

``<tag>`` is ``<version>|<cohort>``, each percent-escaped, so neither can close the tag or fake the
separator; :meth:`Partition.from_tag` is its one parser. An outcome prefix that holds its own hash tag
(``confroute:{outcomes}``) puts every partition in that one slot, with one stream for all of them (the
single-node layout of earlier versions, kept for tests and benchmarks); there the partition's tag is
written without braces.

Fleet identity's keys (:class:`IdentityKeys`) all carry the one hash tag ``{identity}``, so that an
enrolment (record, token index, member set, revocation feed) is one MULTI on one Cluster node:

    <identity>:principal:<id>           a device's or operator's record (JSON)
    <identity>:token:<keyed hash>       a bearer token's keyed hash -> its principal's id
    <identity>:members                  set of every enrolled principal's id
    <identity>:revocations              sorted set: principal id -> ms of its latest revocation or rotation
    <identity>:rate:<id>:<kind>         a principal's token bucket for one kind of call

The fleet's devices (:class:`DeviceKeys`, one hash tag ``{devices}``: one flush is one pipeline on one node):

    <devices>:records                   hash: device id -> what it last ran and when it was last seen (JSON)

Bundle delivery (:class:`BundleKeys`, one hash tag ``{bundles}``; the bundles' bytes live on the service's
file system, not in Redis):

    <bundles>:releases                  hash: cohort -> its current signed bundle release (JSON)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

_SEPARATOR = "|"


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes for ``key``: the text between its first ``{`` and the next ``}``, or ""."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else ""


def _escape(text: str) -> str:
    return quote(text, safe="")


@dataclass(frozen=True)
class Partition:
    """One (edge model version, cohort): the unit of outcome statistics and of policy rollout."""

    edge_model_version: str
    cohort: str

    @property
    def tag(self) -> str:
        """``<version>|<cohort>``, percent-escaped: the hash tag of the partition's keys."""
        return f"{_escape(self.edge_model_version)}{_SEPARATOR}{_escape(self.cohort)}"

    @classmethod
    def from_tag(cls, tag: str) -> Partition:
        """The partition a :attr:`tag` names (a member of the partitions set)."""
        version, separator, cohort = tag.partition(_SEPARATOR)
        if not separator:
            raise ValueError(f"not a partition tag (version|cohort): {tag!r}")
        return cls(unquote(version), unquote(cohort))


@dataclass(frozen=True)
class PartitionKeys:
    """The outcome keys of one partition; all share one hash slot."""

    partition: Partition
    stream: str
    base: str

    @property
    def tag(self) -> str:
        return self.partition.tag

    def seen(self, query_id: str, origin: str) -> str:
        """Marks ``query_id`` as logged by ``origin`` (``device`` or ``service``; value: the entry id)."""
        return f"{self.base}:seen:{origin}:{query_id}"

    def stats(self, mode: str) -> str:
        """The prefix of one routing mode's histograms (see ``cloud_service.outcomes.statistics``)."""
        return f"{self.base}:stats:{mode}"

    def histogram(self, mode: str, signal: str, part: str) -> str:
        """One histogram of a mode's score ``signal``: ``part`` is ``n``, ``t`` or ``w:<label>``."""
        return f"{self.stats(mode)}:{signal}:{part}"

    def stats_meta(self, mode: str) -> str:
        """The hash of what the statistics of one mode were computed on (``model``)."""
        return f"{self.stats(mode)}:meta"

    def labelled(self, query_id: str) -> str:
        return f"{self.base}:labelled:{query_id}"

    def held(self, query_id: str) -> str:
        """The texts of one judgeable query, held (with a TTL) until it is judged (``outcomes.held``)."""
        return f"{self.base}:held:{query_id}"

    @property
    def to_judge(self) -> str:
        """The stream of query ids whose texts are held for the judge (no text in it)."""
        return f"{self.base}:to-judge"

    @property
    def features(self) -> str:
        """The probe features the cloud extracted from held texts (bounded stream; no text)."""
        return f"{self.base}:features"

    @property
    def router_probe(self) -> str:
        """The router probe the retrain worker published last (JSON)."""
        return f"{self.base}:router-probe"

    @property
    def retrains(self) -> str:
        """The retrain worker's provenance stream."""
        return f"{self.base}:retrains"

    def folded(self, query_id: str) -> str:
        """Set by the recalibration worker when it folds a record that was not folded at ingest."""
        return f"{self.base}:folded:{query_id}"

    def arm(self, policy_version: str) -> str:
        """The label totals of the records routed by ``policy_version`` (see ``outcomes.statistics``)."""
        return f"{self.base}:arm:{_escape(policy_version)}"

    @property
    def labels(self) -> str:
        return f"{self.base}:labels"

    @property
    def recalibrations(self) -> str:
        return f"{self.base}:recalibrations"


@dataclass(frozen=True)
class OutcomeKeys:
    """The outcome log's keys under ``prefix``: no braces (a hash tag per partition) or one hash tag
    (everything in that slot)."""

    prefix: str

    def __post_init__(self) -> None:
        braces = "{" in self.prefix or "}" in self.prefix
        if braces and not hash_tag(self.prefix):
            raise ValueError(f"key_prefix must hold one hash tag such as {{outcomes}}, or none: {self.prefix!r}")

    @property
    def single_slot(self) -> bool:
        """True when the prefix holds its own hash tag: one stream, one slot for every partition."""
        return bool(hash_tag(self.prefix))

    @property
    def stream(self) -> str:
        """The one stream of a prefix with its own hash tag (see :meth:`partition`)."""
        if not self.single_slot:
            raise ValueError("key_prefix has no hash tag: each partition has its own stream (see partition())")
        return f"{self.prefix}:stream"

    @property
    def partitions(self) -> str:
        """A set holding the tag of every partition that was ever written."""
        return f"{self.prefix}:partitions"

    def partition(self, partition: Partition) -> PartitionKeys:
        if self.single_slot:
            return PartitionKeys(partition, f"{self.prefix}:stream", f"{self.prefix}:{partition.tag}")
        base = f"{self.prefix}:{{{partition.tag}}}"
        return PartitionKeys(partition, f"{base}:stream", base)

    def partition_of_tag(self, tag: str) -> PartitionKeys:
        return self.partition(Partition.from_tag(tag))


@dataclass(frozen=True)
class PolicyKeys:
    """The policy keys of one partition: the rollout history stream and the versions hash (one slot)."""

    partition: Partition
    stream: str
    versions: str

    @classmethod
    def of(cls, prefix: str, partition: Partition) -> PolicyKeys:
        """``prefix`` holds no braces: the keys bring the partition's hash tag."""
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"key_prefix must not contain braces (keys bring their own hash tag): {prefix!r}")
        base = f"{prefix}:{{{partition.tag}}}"
        return cls(partition, f"{base}:policies", f"{base}:versions")


# Fleet identity. Ids and token hashes are restricted to [A-Za-z0-9._-] by their producers, so no key can
# break out of its place.
IDENTITY_PREFIX = "confroute:{identity}"


@dataclass(frozen=True)
class IdentityKeys:
    """Key names under one prefix (tests use their own prefix to share a Redis)."""

    prefix: str = IDENTITY_PREFIX

    def principal(self, principal_id: str) -> str:
        """A principal's record (JSON string)."""
        return f"{self.prefix}:principal:{principal_id}"

    def token(self, token_hash: str) -> str:
        """A bearer token's keyed hash -> the id of the principal it belongs to."""
        return f"{self.prefix}:token:{token_hash}"

    @property
    def members(self) -> str:
        """The set of every enrolled principal's id."""
        return f"{self.prefix}:members"

    @property
    def revocations(self) -> str:
        """Sorted set: principal id -> milliseconds of its latest revocation or rotation (caches follow it)."""
        return f"{self.prefix}:revocations"

    def rate(self, principal_id: str, bucket: str) -> str:
        """A principal's token bucket for one kind of call (hash: tokens, at_ms)."""
        return f"{self.prefix}:rate:{principal_id}:{bucket}"


DEVICES_PREFIX = "confroute:{devices}"


@dataclass(frozen=True)
class DeviceKeys:
    """Where the service notes each device's last sighting (``cloud_service.ops.devices``)."""

    prefix: str = DEVICES_PREFIX

    @property
    def records(self) -> str:
        """Hash: device id -> its record (JSON: versions it runs, last seen)."""
        return f"{self.prefix}:records"


BUNDLES_PREFIX = "confroute:{bundles}"


@dataclass(frozen=True)
class BundleKeys:
    """Where each cohort's current bundle release is kept (``cloud_service.bundles``)."""

    prefix: str = BUNDLES_PREFIX

    @property
    def releases(self) -> str:
        """Hash: cohort -> its current signed release (JSON of ``confroute.contract.bundle_release``)."""
        return f"{self.prefix}:releases"
