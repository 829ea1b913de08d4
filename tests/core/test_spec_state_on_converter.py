"""Regression: State.on uses a named converter so `State(on=[...])` type-checks under
mypy --strict (with `converter=tuple` the attrs plugin left the item type unsolved; CI's
`mypy --strict games` covers the typing side). At runtime any iterable becomes a tuple."""

from convo_fsm import KEEP, On, State


def test_state_on_accepts_any_iterable_and_stores_a_tuple() -> None:
    first, second = On("a", KEEP), On("b", KEEP)
    from_list = State("s", on=[first, second])
    from_generator = State("s", on=(t for t in (first, second)))
    assert from_list.on == (first, second)
    assert isinstance(from_list.on, tuple)
    assert from_generator.on == (first, second)
