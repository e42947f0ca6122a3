"""Continuous batching: one thread owns the onnxruntime session and steps every running sequence together.

Generations run on their callers' threads (sampling, stop strings, detokenizing) and hand each chosen token
to the scheduler (``Row.step``), which blocks until the next batched step has run. The scheduler thread:

- runs prefills one at a time, between steps (``call``), into single-sequence caches;
- admits a sequence into a free row of the batch's KV buffer when it first steps (copying its prompt's
  keys and values), so a request that arrives while others decode joins them at the next step;
- steps the rows whose tokens are in, after giving the rows of the previous step a short grace to hand
  theirs (a row that is not ready, e.g. whose reader is slow, does not hold the others: it sits out);
- frees a row when its generation ends or is closed.

A greedy row *follows* its own argmax (``Follow``): its next token is the graph's ``next_token`` output,
so the scheduler feeds it itself, for every such row at once, as soon as a step returns, and queues the
step's outputs for the generation to read (at most ``AHEAD`` of them). A batch of greedy rows then steps
back to back, never waiting for its callers' threads (sampling, detokenizing, streaming); the caller checks
that the tokens it chose are the ones fed. The scheduler stops feeding a row at an end-of-sequence token or
after its last allowed step; a stop string ends the generation one or a few steps later than decoded
(those steps are dropped with the row).

Rows that sit a step out still go through the graph (the batch is the first ``n`` rows): they are fed a
dummy token at their next position, which their own next step overwrites, and their outputs are dropped.
Free rows are fed at position 0. Each row reads only its own length (the mask's row sum), so its outputs
equal those of the same sequence decoded alone.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import numpy as np

from confroute.engine.session import BatchKv, KvCache, OnnxDecoder, StepOutput, row_output
from confroute.errors import ConfrouteError, RuntimeFailure

T = TypeVar("T")

_INITIAL_CAPACITY = 256
#: Outputs a following row may run ahead of its reader; a reader further behind makes the row sit out.
AHEAD = 4


class Follow(NamedTuple):
    """How a greedy row feeds itself: it stops at any of ``eos_ids`` and after ``max_steps`` steps."""

    eos_ids: frozenset[int]
    max_steps: int


class _Job:
    """Work run on the scheduler thread (a prefill); the caller waits for its result."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # handed to the waiting caller, re-raised there
            self.error = exc
        self.done.set()


class _Taken(NamedTuple):
    """A row taken into a step, with the slot and token it steps with."""

    row: Row
    slot: int
    token: int


class Row:
    """One sequence's place in the batch, from its first step to ``close()``."""

    def __init__(self, scheduler: BatchScheduler, cache: KvCache, length: int, follow: Follow | None) -> None:
        self._scheduler = scheduler
        self.follow = follow
        self.steps_left = follow.max_steps if follow is not None else 0
        self.queued: collections.deque[tuple[int, StepOutput]] = collections.deque()  # (token fed, its outputs)
        self.parked: int | None = None  # a following row's next token, held while its reader is AHEAD behind
        self.started = False
        self.cache: KvCache | None = cache  # the prefix, until the row is loaded into the batch
        self.length = length
        self.capacity = cache.capacity
        self.slot: int | None = None
        self.token = 0
        self.logits = False
        self.features = False
        self.ready = False
        self.closed = False
        self.output: StepOutput | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()

    def step(self, token: int, *, logits: bool = False, features: bool = False) -> StepOutput:
        """Appends ``token`` to this sequence in the next batched step; blocks until it has run."""
        if self.closed:
            raise RuntimeFailure("this row has left the batch")
        if self.follow is not None:
            return self._scheduler.next_output(self, token, logits, features)
        self.done.clear()
        self._scheduler.submit(self, token, logits, features)
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.output is not None
        return self.output

    def close(self) -> None:
        """Leaves the batch (idempotent); the row is free for the next sequence."""
        self._scheduler.leave(self)


class BatchScheduler:
    """Owns ``decoder``'s session on one thread; at most ``rows`` sequences decode together."""

    def __init__(self, decoder: OnnxDecoder, rows: int, *, grace_s: float = 0.02) -> None:
        if rows < 1:
            raise ValueError(f"a batch needs at least one row, got {rows}")
        self._decoder = decoder
        self._kv: BatchKv | None = None
        self._rows = rows
        self._grace_s = grace_s
        self._cond = threading.Condition()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._joining: collections.deque[Row] = collections.deque()
        self._slots: list[Row | None] = [None] * rows
        self._last: set[int] = set()  # the slots of the previous step: given a grace to hand their next token
        self._closed = False
        self.steps = 0
        self.stepped_rows = 0
        self._thread = threading.Thread(target=self._loop, name="batch-decoder", daemon=True)
        self._thread.start()

    @property
    def rows(self) -> int:
        return self._rows

    def call(self, fn: Callable[[], T]) -> T:
        """Runs ``fn`` on the scheduler thread between two steps (a prefill) and returns its result."""
        job = _Job(fn)
        with self._cond:
            if self._closed:
                raise RuntimeFailure("the batch decoder is closed")
            self._jobs.append(job)
            self._cond.notify_all()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]

    def row(self, cache: KvCache, length: int, follow: Follow | None = None) -> Row:
        """A row for the sequence prefilled into ``cache`` (``length`` positions); it joins at its first step.
        ``follow``: a greedy row, fed its own argmax by the scheduler."""
        return Row(self, cache, length, follow)

    def next_output(self, row: Row, token: int, logits: bool, features: bool) -> StepOutput:
        """A following row's outputs after ``token`` (its first step submits it; later ones were fed)."""
        if logits:
            raise RuntimeFailure("a greedy row does not fetch logits")
        with self._cond:
            if not row.started:
                row.started = True
                self._submit(row, token, logits, features)
            self._cond.wait_for(lambda: bool(row.queued) or row.error is not None or self._closed)
            if not row.queued:
                raise row.error or RuntimeFailure("the batch decoder is closed")
            fed, output = row.queued.popleft()
            if row.parked is not None and len(row.queued) < AHEAD:
                row.token, row.ready, row.parked = row.parked, True, None
                self._cond.notify_all()
        if fed != token:
            raise RuntimeFailure(f"a greedy row chose token {token}, the batch fed {fed}")
        return output

    def submit(self, row: Row, token: int, logits: bool, features: bool) -> None:
        with self._cond:
            self._submit(row, token, logits, features)

    def _submit(self, row: Row, token: int, logits: bool, features: bool) -> None:
        if self._closed:
            raise RuntimeFailure("the batch decoder is closed")
        row.token, row.logits, row.features, row.ready = token, logits, features, True
        if row.slot is None and row not in self._joining:
            self._joining.append(row)
        self._cond.notify_all()

    def leave(self, row: Row) -> None:
        with self._cond:
            row.closed, row.ready, row.cache = True, False, None
            if row in self._joining:
                self._joining.remove(row)
            if row.slot is not None:
                self._slots[row.slot] = None
                row.slot = None
                self._cond.notify_all()  # a sequence may be waiting for this row

    def close(self) -> None:
        """Stops the thread; generations still running fail with ``RuntimeFailure``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or bool(self._jobs) or self._any_ready())
                if self._closed:
                    self._fail_all(RuntimeFailure("the batch decoder is closed"))
                    return
                job = self._jobs.popleft() if self._jobs else None
            if job is not None:
                job.run()  # one prefill, then a step: new requests neither starve nor are starved
            batch = self._gather()
            if batch:
                self._step(batch)

    def _any_ready(self) -> bool:
        return (bool(self._joining) and None in self._slots) or any(r is not None and r.ready for r in self._slots)

    def _gather(self) -> list[_Taken]:
        """Admits waiting sequences into free rows, waits briefly for last step's rows, takes the ready ones."""
        with self._cond:
            self._admit()
            deadline = time.monotonic() + self._grace_s
            while self._late() and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
                self._admit()
            batch = [_Taken(r, i, r.token) for i, r in enumerate(self._slots) if r is not None and r.ready]
            for taken in batch:
                taken.row.ready = False
            return batch

    def _late(self) -> bool:
        """A row of the last step whose caller has yet to hand its token (following rows feed themselves)."""
        return any((r := self._slots[s]) is not None and r.follow is None and not r.ready for s in self._last)

    def _admit(self) -> None:
        while self._joining and None in self._slots:
            row = self._joining.popleft()
            slot = self._slots.index(None)
            try:
                self._load(row, slot)
            except Exception as exc:  # e.g. no memory to grow the buffer: this row fails, the others go on
                failure = exc if isinstance(exc, ConfrouteError) else None
                row.error = failure or RuntimeFailure(f"cannot join the batch: {exc!r}")
                row.done.set()
                self._cond.notify_all()
                continue
            row.slot, row.cache = slot, None
            self._slots[slot] = row

    def _load(self, row: Row, slot: int) -> None:
        assert row.cache is not None
        if self._kv is None:
            self._kv = self._decoder.new_batch(self._rows, max(_INITIAL_CAPACITY, row.capacity))
        if row.capacity > self._kv.capacity:
            self._kv.grow(max(row.capacity, 2 * self._kv.capacity))
        self._kv.load(slot, row.cache, row.length)

    def _step(self, batch: list[_Taken]) -> None:
        """Steps the rows taken (their slots and tokens as taken: a following row's reader may close it meanwhile)."""
        kv = self._kv
        assert kv is not None
        used = max(t.slot for t in batch) + 1
        with self._cond:
            free = [i for i, r in enumerate(self._slots[:used]) if r is None]
        kv.lengths[free] = 0  # free rows: position 0; rows sitting out: their next position (overwritten later)
        tokens = np.zeros(used, dtype=np.int64)
        slots = [t.slot for t in batch]
        tokens[slots] = [t.token for t in batch]
        try:
            out = self._decoder.step_rows(kv, tokens, logits=any(t.row.logits for t in batch),
                                          features=any(t.row.features for t in batch))
        except ConfrouteError as exc:
            self._deliver(batch, None, exc)
            return
        except Exception as exc:  # a bug must fail these rows, not kill the thread every row waits on
            self._deliver(batch, None, RuntimeFailure(f"a batched step failed: {exc!r}"))
            return
        self.steps += 1
        self.stepped_rows += len(batch)
        kv.lengths[slots] += 1
        self._deliver(batch, out, None)

    def _deliver(self, batch: list[_Taken], out: dict[str, np.ndarray] | None, error: BaseException | None) -> None:
        with self._cond:
            self._last = {t.slot for t in batch}
            for row, slot, token in batch:
                row.output = None if out is None else row_output(out, slot)
                row.error = error
                if row.follow is not None and row.output is not None:
                    if not row.closed:
                        self._feed(row, token, row.output)
                else:
                    row.done.set()
            self._cond.notify_all()

    def _feed(self, row: Row, token: int, output: StepOutput) -> None:
        """Queues a following row's outputs and feeds it its argmax (parked while its reader lags)."""
        assert row.follow is not None
        row.queued.append((token, output))
        row.steps_left -= 1
        if row.steps_left <= 0 or output.next_token in row.follow.eos_ids:
            return  # the generation ends here: its reader closes the row
        if len(row.queued) < AHEAD:
            row.token, row.ready = output.next_token, True
        else:
            row.parked = output.next_token

    def _fail_all(self, error: BaseException) -> None:
        for row in [*self._joining, *(r for r in self._slots if r is not None)]:
            row.error = error
            row.done.set()
        for job in self._jobs:
            job.error = error
            job.done.set()
        self._cond.notify_all()


__all__ = ["AHEAD", "BatchScheduler", "Follow", "Row"]
