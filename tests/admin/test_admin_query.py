"""The sessions list's query against a plain reference: filter, sort, slice."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from convo_fsm.admin import AdminError, query
from convo_fsm.session import Session

keys = st.text(alphabet="abAB:<>é0", min_size=1, max_size=6)
sessions = st.lists(
    st.builds(lambda k, spec, state, deadline: Session(k, spec, state, {}, deadline, None, 0,
                                                       (), 0.0, 0.0),
              keys, st.sampled_from(["quiz", "game"]), st.sampled_from(["a", "b", "c"]),
              st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0]),
                        st.floats(0, 100, allow_nan=False))),
    max_size=40, unique_by=lambda s: s.key)


@given(sessions, st.sampled_from(["", "a", "A:", "é", "<"]), st.sampled_from(["", "quiz"]),
       st.sampled_from(["", "b"]), st.integers(0, 45), st.integers(1, 12), st.integers(1, 30))
def test_a_page_is_the_reference_slice(rows: list[Session], text: str, spec: str, state: str,
                                       offset: int, limit: int, heap_limit: int) -> None:
    page = query(rows, text=text, spec=spec, state=state, offset=offset, limit=limit,
                 heap_limit=heap_limit)
    matches = [s for s in rows if text.casefold() in s.key.casefold()
               and spec in ("", s.spec) and state in ("", s.state)]
    expected = sorted(matches, key=lambda s: (math.inf if s.deadline is None else s.deadline,
                                              s.key))[offset:offset + limit]
    assert page.total == len(matches)
    assert list(page.rows) == expected


def test_a_bad_page_is_an_error_naming_it() -> None:
    for offset, limit in ((-1, 10), (0, 0)):
        try:
            query([], offset=offset, limit=limit)
        except AdminError as exc:
            assert "offset >= 0 and limit >= 1" in str(exc)
        else:
            raise AssertionError("no error")
