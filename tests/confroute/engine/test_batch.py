"""Continuous batching: sequences decoded together give each the outputs it gets decoded alone."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from confroute.engine import Engine, Generation, SamplingParams
from confroute.engine.batch import AHEAD
from confroute.errors import RuntimeFailure

PROMPTS = [
    [{"role": "user", "content": "What is two plus two?"}],
    [{"role": "user", "content": "Name a colour."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is the sky blue, in one line?"}],
    [{"role": "user", "content": "Hi"}],
]


@pytest.fixture
def batched(tiny_bundles: dict[str, Path]) -> Iterator[Engine]:
    engine = Engine(tiny_bundles["llama"], max_batch=4)
    yield engine
    engine.close()


def _concurrently(fns: list[Callable[[], Generation]]) -> list[Generation]:
    results: list[Generation | None] = [None] * len(fns)
    errors: list[BaseException] = []
    gate = threading.Barrier(len(fns))

    def work(i: int) -> None:
        try:
            gate.wait()
            results[i] = fns[i]()
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def _same(a: Generation, b: Generation) -> None:
    assert a.token_ids == b.token_ids
    assert a.text == b.text
    np.testing.assert_allclose(a.logprobs, b.logprobs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.entropies, b.entropies, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.max_probs, b.max_probs, rtol=1e-5, atol=1e-6)
    assert a.finish_reason == b.finish_reason


def test_concurrent_greedy_generations_equal_the_ones_decoded_alone(tiny_bundles: dict[str, Path],
                                                                     batched: Engine) -> None:
    alone = Engine(tiny_bundles["llama"])
    lengths = [40, 110, 60, 90]  # rows retire at different steps; the others go on
    params = [SamplingParams(max_new_tokens=n, ignore_eos=True) for n in lengths]
    expected = [alone.chat(p, q) for p, q in zip(PROMPTS, params, strict=True)]
    got = _concurrently([functools.partial(batched.chat, p, q) for p, q in zip(PROMPTS, params, strict=True)])
    for a, b in zip(got, expected, strict=True):
        _same(a, b)
    assert batched.batch is not None
    assert batched.batch.stepped_rows > batched.batch.steps  # some steps did carry several rows


def test_more_requests_than_rows_wait_for_a_free_row(tiny_bundles: dict[str, Path]) -> None:
    alone = Engine(tiny_bundles["llama"])
    engine = Engine(tiny_bundles["llama"], max_batch=2)
    try:
        prompts = PROMPTS * 2
        params = [SamplingParams(max_new_tokens=5 + 3 * i, ignore_eos=True) for i in range(len(prompts))]
        expected = [alone.chat(p, q) for p, q in zip(prompts, params, strict=True)]
        got = _concurrently([functools.partial(engine.chat, p, q) for p, q in zip(prompts, params, strict=True)])
        for a, b in zip(got, expected, strict=True):
            _same(a, b)
    finally:
        engine.close()


def test_a_request_arriving_mid_decode_joins_and_both_stay_exact(tiny_bundles: dict[str, Path],
                                                                  batched: Engine) -> None:
    alone = Engine(tiny_bundles["llama"])
    long, short = SamplingParams(max_new_tokens=40, ignore_eos=True), SamplingParams(max_new_tokens=8, ignore_eos=True)
    first = batched.start(batched.encode_chat(PROMPTS[0]), long)
    events = iter(first)
    for _ in range(10):
        next(events)
    joined = batched.chat(PROMPTS[2], short)  # decodes while ``first`` is held mid-generation
    for _ in events:
        pass
    _same(first.result, alone.chat(PROMPTS[0], long))
    _same(joined, alone.chat(PROMPTS[2], short))


def test_a_greedy_row_runs_at_most_ahead_steps_ahead_of_its_reader(tiny_bundles: dict[str, Path],
                                                                   batched: Engine) -> None:
    alone = Engine(tiny_bundles["llama"])
    params = SamplingParams(max_new_tokens=40, ignore_eos=True)
    held = batched.start(batched.encode_chat(PROMPTS[0]), params)
    events = iter(held)
    for _ in range(3):
        next(events)  # the row's first step is in; its reader now stops reading
    other = batched.chat(PROMPTS[1], params)  # decodes to the end while the held row sits parked
    row = held._row
    assert row is not None and row.follow is not None
    assert len(row.queued) <= AHEAD and row.parked is not None
    for _ in events:
        pass
    _same(held.result, alone.chat(PROMPTS[0], params))
    _same(other, alone.chat(PROMPTS[1], params))


def test_a_stop_string_ends_a_greedy_row_that_ran_ahead(tiny_bundles: dict[str, Path], batched: Engine) -> None:
    alone = Engine(tiny_bundles["llama"])
    free = alone.chat(PROMPTS[2], SamplingParams(max_new_tokens=30, ignore_eos=True))
    stop = free.token_texts[5] or free.token_texts[6]
    assert stop
    params = SamplingParams(max_new_tokens=30, ignore_eos=True, stop=(stop,))
    _same(batched.chat(PROMPTS[2], params), alone.chat(PROMPTS[2], params))
    assert batched.chat(PROMPTS[3], SamplingParams(max_new_tokens=4)).completion_tokens >= 1  # its row was freed


def test_sampling_stops_and_probes_stay_per_request(tiny_bundles: dict[str, Path], batched: Engine) -> None:
    alone = Engine(tiny_bundles["llama"])
    params = [SamplingParams(max_new_tokens=12, temperature=1.2, top_p=0.9, seed=7, ignore_eos=True),
              SamplingParams(max_new_tokens=12, ignore_eos=True),
              SamplingParams(max_new_tokens=30, temperature=0.8, seed=1)]
    expected = [alone.chat(p, q) for p, q in zip(PROMPTS, params, strict=False)]
    got = _concurrently([functools.partial(batched.chat, p, q) for p, q in zip(PROMPTS, params, strict=False)])
    for a, b in zip(got, expected, strict=True):
        _same(a, b)
        assert a.tbg == b.tbg and a.slt == b.slt


def test_a_closed_run_frees_its_row(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"], max_batch=1 + 1)
    try:
        params = SamplingParams(max_new_tokens=30, ignore_eos=True)
        held = [iter(engine.start(engine.encode_chat(PROMPTS[i]), params)) for i in range(2)]
        for events in held:
            next(events)
            next(events)  # both rows taken
        for events in held:
            events.close()  # type: ignore[attr-defined]
        assert engine.chat(PROMPTS[3], SamplingParams(max_new_tokens=4)).completion_tokens >= 1
    finally:
        engine.close()


def test_gpt2_bundles_answer_one_at_a_time(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["gpt2"], max_batch=4)
    assert engine.batch is None and engine.parallel == 1


def test_the_batch_buffer_grows_without_losing_what_its_rows_hold(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"])
    decoder = engine.decoder
    prompts = [engine.encode_chat(p)[:n] for p, n in zip(PROMPTS[:2], (5, 9), strict=True)]
    solo = []
    for ids in prompts:
        cache = decoder.new_cache(40)
        steps = [decoder.forward(cache, np.asarray([ids]), logits=True)]
        for _ in range(20):
            steps.append(decoder.step(cache, steps[-1].next_token, logits=True))
        solo.append(steps)
    kv = decoder.new_batch(2, 12)
    for row, ids in enumerate(prompts):
        cache = decoder.new_cache(len(ids), arrays=True)
        decoder.forward(cache, np.asarray([ids]))
        kv.load(row, cache, len(ids))
    for s in range(20):
        if s == 2:
            kv.grow(40)
        out = decoder.step_rows(kv, np.asarray([solo[0][s].next_token, solo[1][s].next_token]), logits=True)
        kv.lengths[:2] += 1
        for row in range(2):
            expected = solo[row][s + 1].logits
            assert expected is not None
            np.testing.assert_allclose(out["logits"][row], expected, rtol=1e-5, atol=1e-5)
    assert kv.capacity == 40


def test_closing_the_engine_fails_a_generation_in_flight_instead_of_hanging(tiny_bundles: dict[str, Path]) -> None:
    engine = Engine(tiny_bundles["llama"], max_batch=2)
    events = iter(engine.start(engine.encode_chat(PROMPTS[0]), SamplingParams(max_new_tokens=50, ignore_eos=True)))
    next(events)
    engine.close()
    with pytest.raises(RuntimeFailure):
        for _ in events:
            pass
