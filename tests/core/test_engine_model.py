"""Random specs, random events and clock advances: the engine agrees with a tiny model."""

from __future__ import annotations

import asyncio
from typing import Any

from budget import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from convo_fsm import KEEP, STOP, Engine, On, Spec, State, Target, Timeout, VirtualClock

EVENTS = ("a", "b", "c")


def even(ctx: Any) -> bool:
    return int(ctx.event.split()[1]) % 2 == 0


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    names = [f"s{i}" for i in range(n)]
    targets = st.sampled_from([*names, KEEP, STOP])
    states: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        final = i == n - 1 and i > 0 and draw(st.booleans())
        on: list[tuple[str, Target, bool]] = []
        if not final:
            # A chain keeps every state reachable and gives each a way out.
            on.append(("next", names[i + 1] if i + 1 < n else STOP, False))
            for _ in range(draw(st.integers(0, 3))):
                on.append((draw(st.sampled_from(EVENTS)), draw(targets), draw(st.booleans())))
        timeout = None
        if not final and draw(st.booleans()):
            timeout = (draw(st.integers(1, 20)), draw(st.sampled_from([*names, STOP])))
        states[name] = {"final": final, "on": on, "timeout": timeout}
    return {"names": names, "states": states}


def build(table: dict[str, Any]) -> Spec:
    return Spec(name="model", initial="s0", states=[
        State(name, final=st_["final"],
              on=[On(ev, tgt, guard=even if g else None) for ev, tgt, g in st_["on"]],
              timeout=None if st_["timeout"] is None else Timeout(*st_["timeout"]))
        for name, st_ in table["states"].items()
    ], any_state=[On("quit", STOP)])


class Model:
    """The semantics written as plainly as possible."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.states = table["states"]
        self.now = 0.0
        self.state: str | None = None

    def enter(self, name: Target) -> None:
        if name is STOP or (isinstance(name, str) and self.states[name]["final"]):
            self.state = None
            return
        assert isinstance(name, str)
        self.state = name
        timeout = self.states[name]["timeout"]
        self.deadline = None if timeout is None else self.now + timeout[0]

    def event(self, name: str, number: int) -> bool:
        if self.state is None:
            return False
        if name == "quit" and not any(ev == "quit" for ev, _, _ in self.states[self.state]["on"]):
            self.state = None
            return True
        for ev, target, guarded in self.states[self.state]["on"]:
            if ev == name and (not guarded or number % 2 == 0):
                if target is KEEP:
                    self.enter(self.state)
                else:
                    self.enter(target)
                return True
        return False

    def advance(self, dt: float) -> None:
        end = self.now + dt
        while self.state is not None and self.deadline is not None and self.deadline <= end:
            self.now = self.deadline
            self.enter(self.states[self.state]["timeout"][1])
        self.now = end


ops = st.lists(st.one_of(
    st.tuples(st.just("event"), st.sampled_from([*EVENTS, "next", "quit"]), st.integers(0, 9)),
    st.tuples(st.just("advance"), st.integers(0, 25), st.just(0)),
), max_size=30)


@settings(max_examples=examples(150), deadline=None)
@given(table=tables(), script=ops)
def test_engine_matches_the_model(table: dict[str, Any], script: list[tuple[str, Any, int]]
                                  ) -> None:
    spec = build(table)

    async def run() -> None:
        clock = VirtualClock()
        engine = Engine(clock=clock, filters={"raw": lambda e: "k"})
        model = Model(table)
        await engine.start(spec, "k")
        model.enter("s0")
        for op, arg, number in script:
            if op == "event":
                text = f"/{arg} {number}"
                assert await engine.dispatch(text) == model.event(arg, number), text
            else:
                await clock.advance(arg)
                model.advance(arg)
            session = engine.session("k")
            assert (session.state if session else None) == model.state
            if session is not None:
                assert session.deadline == (model.deadline if model.state else None)
        if model.state is None:
            assert engine.pending_timers() == 0
            assert not list(engine.busy_keys())

    asyncio.run(run())
