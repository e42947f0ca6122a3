from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confroute.errors import InvalidInput
from confroute.uncertainty.answers import final_answer, gold_answer, is_correct, parse_choice, parse_number
from confroute.uncertainty.ladder import arithmetic_ladder

OPTIONS = ["a cat", "the dog", "cow"]


@pytest.mark.parametrize(("text", "number"), [
    ("12 times 7 is 84.", "84"), ("The total is $1,234.50.", "1234.5"), ("12.0", "12"), ("12.500 kg", "12.5"),
    ("5-3=2", "2"), ("x = -7", "-7"), ("-0.0", "0"), ("1,000,000 people", "1000000"), ("no number", None),
])
def test_the_last_number_is_read_canonically(text: str, number: str | None) -> None:
    assert parse_number(text) == number


@given(st.integers(-10**9, 10**9))
def test_integers_round_trip_through_text_with_separators_and_decimals(value: int) -> None:
    assert parse_number(f"so the answer is {value:,}.00 units") == str(value)


@pytest.mark.parametrize(("text", "letter"), [
    ("The answer is (B).", "B"), ("B) the dog", "B"), ("C", "C"), ("I think it is the dog.", "B"),
    ("Answer: A", "A"), ("A cat or a dog?", None), ("nothing matches", None), ("The answer is (D)", None),
])
def test_choices_read_an_explicit_letter_first_then_a_unique_option_text(text: str, letter: str | None) -> None:
    assert parse_choice(text, OPTIONS) == letter


def test_gold_choices_may_be_letters_or_option_text() -> None:
    assert gold_answer("(b)", "choice", OPTIONS) == "B"
    assert gold_answer("Cow", "choice", OPTIONS) == "C"
    with pytest.raises(InvalidInput) as err:
        gold_answer("horse", "choice", OPTIONS)
    assert err.value.field == "answer"


def test_free_text_is_normalised_and_matched_as_whole_words() -> None:
    assert final_answer("The  Eiffel Tower!", "text") == "eiffel tower"
    assert is_correct("It is Paris, France.", "paris", "text")
    assert not is_correct("Parisian", "paris", "text")


def test_correctness_per_kind_and_bad_input() -> None:
    assert is_correct("12 x 7 = 84", "84.0", "number")
    assert not is_correct("I don't know", "84", "number")
    assert is_correct("(C) cow", "C", "choice", OPTIONS)
    with pytest.raises(InvalidInput, match="answer kind"):
        final_answer("x", "essay")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        gold_answer("many", "number")


def test_the_ladder_is_seeded_balanced_and_exact() -> None:
    items = arithmetic_ladder(24, seed=3)
    assert items == arithmetic_ladder(24, seed=3) and items != arithmetic_ladder(24, seed=4)
    assert sorted((i.digits, i.op) for i in items) == sorted([(d, o) for d in (1, 2, 3, 4) for o in "+-x"] * 2)
    for item in items:
        assert len(str(item.a)) == len(str(item.b)) == item.digits
        record = item.to_json()
        assert is_correct(f"The answer is {item.answer:,}.", record["answer"], "number")
        assert str(item.a) in record["messages"][0]["content"]


def test_the_ladder_rejects_bad_levels() -> None:
    with pytest.raises(InvalidInput):
        arithmetic_ladder(5, seed=0, ops=("/",))
    with pytest.raises(InvalidInput):
        arithmetic_ladder(-1, seed=0)
