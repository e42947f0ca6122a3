"""Probe features without uploads of text: the cloud runs the device's own bundle over the held texts.

While the service still holds a judged query's texts (:mod:`cloud_service.outcomes.held`), the judge
worker hands the record to :class:`FeatureExtractor` (one of its ``after`` hooks). If the cloud's copy
of the edge bundle is the build the device ran (the same build version as the record's edge model),
the extractor prefills the question exactly as the device did and keeps only what the router probe
reads: the hidden states at the token before generation over the bundle's probe layers, as float16.
:class:`FeatureStore` keeps them per partition (edge build, cohort) in a stream trimmed to about
``max_features`` entries: query id and features, no text. Devices never upload hidden states.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from cloud_service.outcomes.config import OutcomeLogConfig
from cloud_service.redis_client import RedisClient, stream_entries, translated
from confroute.contract.enums import ChatRole
from confroute.contract.outcome import OutcomeRecord

if TYPE_CHECKING:
    from confroute.engine import Engine

logger = logging.getLogger(__name__)

_ROLES = tuple(f"{role.value}: " for role in ChatRole)


def messages_of(prompt_text: str) -> list[dict[str, str]]:
    """The chat messages of a held prompt (the service writes one ``role: content`` per message, joined by
    newlines; a line that does not start with a role continues the message before it)."""
    messages: list[dict[str, str]] = []
    for line in prompt_text.split("\n"):
        role = next((prefix for prefix in _ROLES if line.startswith(prefix)), None)
        if role is not None or not messages:
            name = (role or "user: ")[:-2]
            messages.append({"role": name, "content": line[len(role or ""):]})
        else:
            messages[-1]["content"] += "\n" + line
    return messages


class FeatureStore:
    """Probe features per partition, bounded (see the module docstring)."""

    def __init__(self, client: RedisClient, log: OutcomeLogConfig, max_features: int) -> None:
        self._client = client
        self._log = log
        self._max = max_features

    async def add(self, record: OutcomeRecord, features: npt.NDArray[np.float32]) -> None:
        keys = self._log.partition(record.edge_model.version, record.cohort)
        fields: Mapping[str, str | bytes] = {"qid": record.query_id,
                                             "f16": np.asarray(features, "<f2").tobytes()}
        with translated("storing probe features"):
            await self._client.xadd(keys.features, fields, maxlen=self._max, approximate=True)  # type: ignore[arg-type]

    async def read(self, edge_model_version: str, cohort: str) -> tuple[list[str], npt.NDArray[np.float32]]:
        """Every stored query id and its features ([n, feature_dim] float32), oldest first; a query
        stored twice keeps its last features."""
        keys = self._log.partition(edge_model_version, cohort)
        with translated("reading probe features"):
            entries = stream_entries(await self._client.xrange(keys.features))
        by_query: dict[str, bytes] = {}
        for _, fields in entries:
            by_query[fields[b"qid"].decode()] = fields[b"f16"]
        if not by_query:
            return [], np.zeros((0, 0), np.float32)
        rows = [np.frombuffer(blob, "<f2").astype(np.float32) for blob in by_query.values()]
        return list(by_query), np.stack(rows)


class FeatureExtractor:
    """The judge worker's hook: TBG features of held queries of the cloud's edge build."""

    def __init__(self, engine: Engine, store: FeatureStore) -> None:
        self._engine = engine
        self._store = store
        self._one_at_a_time = asyncio.Lock()  # the judge runs its hooks concurrently; the engine prefills one
        self.extracted = 0
        self.other_build = 0

    @property
    def version(self) -> str:
        """The build version of the edge bundle this extractor runs (its probe aside)."""
        return self._engine.manifest.build_version

    async def __call__(self, record: OutcomeRecord) -> None:
        if record.edge_model.version != self.version or not record.prompt_text:
            self.other_build += 1  # another build's hidden states would not be the device's
            return
        async with self._one_at_a_time:
            features = await asyncio.to_thread(self.tbg_features, messages_of(record.prompt_text))
        await self._store.add(record, features)
        self.extracted += 1

    def tbg_features(self, messages: list[dict[str, str]]) -> npt.NDArray[np.float32]:
        """The hidden states the TBG probe reads after prefilling ``messages``, as the device prefills them."""
        from confroute.engine import SamplingParams  # onnxruntime: loaded only where features are extracted

        prefix = self._engine.prefill(self._engine.encode_chat(messages), SamplingParams(max_new_tokens=1),
                                      features=True)
        features = prefix.step.features
        assert features is not None  # features=True keeps them
        return np.asarray(features, np.float32).reshape(-1)
