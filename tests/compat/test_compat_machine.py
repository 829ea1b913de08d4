"""A hypothesis state machine for the AstrBot compat layer: several users' waiters, each
handler calling keep(t, reset_timeout) / stop() as told, random time passing. A model of
anchors.md's formula predicts every deadline and how and when each `await waiter(event)`
ends; the engine must agree after every step (virtual clock: exactly at the deadline)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from budget import examples
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from convo_fsm.compat.astrbot import PluginHost
from convo_fsm.compat.astrbot.api.event import AstrMessageEvent, filter
from convo_fsm.compat.astrbot.api.star import Star
from convo_fsm.compat.astrbot.core.utils.session_waiter import (
    DefaultSessionFilter,
    SessionController,
    session_waiter,
)

WAITER_TIMEOUT = 2.0
USERS = ("ann", "bob", "cy")
EPS = 1e-9


class CompatMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.host = PluginHost()
        self.outcomes: list[tuple[str, str, float]] = []  # (user, "none"/"timeout", when)
        # The model: per live user, (deadline, ts, timeout) of the last keep.
        self.model: dict[str, tuple[float, float, float]] = {}
        self.expected: list[tuple[str, str, float]] = []
        outcomes, clock = self.outcomes, self.host.clock

        async def handler(controller: SessionController, event: AstrMessageEvent) -> None:
            words = event.message_str.split()
            if words[0] == "keep":
                controller.keep(float(words[1]), reset_timeout=words[2] == "1")
            elif words[0] == "stop":
                controller.stop()

        class Probe(Star):
            @filter.command("probe")
            async def start(self, event: AstrMessageEvent) -> None:
                waiter = session_waiter(timeout=WAITER_TIMEOUT)(handler)
                user = event.get_sender_id()
                try:
                    await waiter(event)
                except TimeoutError:
                    outcomes.append((user, "timeout", clock.now()))
                else:
                    outcomes.append((user, "none", clock.now()))

        self.host.load(Probe)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def now(self) -> float:
        return self.host.clock.now()

    def end(self, user: str, how: str, when: float) -> None:
        del self.model[user]
        self.expected.append((user, how, when))

    @rule(user=st.sampled_from(USERS))
    def start(self, user: str) -> None:
        if user in self.model:
            return  # a second waiter on a live key is refused (tested elsewhere)
        self.run(self.host.send("/probe", sender=user))
        now = self.now()
        self.model[user] = (now + WAITER_TIMEOUT, now, WAITER_TIMEOUT)

    @rule(user=st.sampled_from(USERS),
          seconds=st.sampled_from([-5.0, -1.0, -0.3, 0.0, 0.25, 0.5, 1.0, 3.0]),
          reset=st.booleans())
    def keep(self, user: str, seconds: float, reset: bool) -> None:
        self.run(self.host.send(f"keep {seconds} {int(reset)}", sender=user))
        if user not in self.model:
            return  # no session: handed back to normal handling (no command matches)
        now = self.now()
        _, ts, timeout = self.model[user]
        new = seconds if reset else timeout - (now - ts) + seconds
        if new <= 0:
            self.end(user, "none", now)
        else:
            self.model[user] = (now + new, now, new)

    @rule(user=st.sampled_from(USERS), stop=st.booleans())
    def message(self, user: str, stop: bool) -> None:
        self.run(self.host.send("stop" if stop else "hello", sender=user))
        if stop and user in self.model:
            self.end(user, "none", self.now())

    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        deadlines = sorted(d for d, _, _ in self.model.values())
        choices = [0.1, 1.0, 2.5] + [d - self.now() for d in deadlines]
        seconds = max(0.0, data.draw(st.sampled_from(choices), label="seconds"))
        until = self.now() + seconds
        for user, (deadline, _, _) in sorted(self.model.items(), key=lambda kv: kv[1][0]):
            if deadline <= until:  # exactly as VirtualClock.advance compares
                self.end(user, "timeout", deadline)
        self.run(self.host.advance(seconds))

    @invariant()
    def agrees_with_the_model(self) -> None:
        engine = self.host.engine
        assert len(engine) == len(self.model)
        for user, (deadline, _, _) in self.model.items():
            key = self.host.runtime.key_for(self.host.event("x", sender=user),
                                            DefaultSessionFilter())
            session = engine.session(key)
            assert session is not None, f"{user}'s waiter ended early"
            assert session.deadline == pytest.approx(deadline, abs=EPS)
        got = sorted(self.outcomes, key=lambda o: (o[2], o[0]))
        want = sorted(self.expected, key=lambda o: (o[2], o[0]))
        assert [(u, h) for u, h, _ in got] == [(u, h) for u, h, _ in want]
        for (_, _, t_got), (_, _, t_want) in zip(got, want, strict=True):
            assert t_got == pytest.approx(t_want, abs=EPS)
        assert engine.pending_timers() == len(self.model)  # nothing left behind

    def teardown(self) -> None:
        try:
            self.run(self.host.close())
        finally:
            self.loop.close()
            asyncio.set_event_loop(None)


TestCompatKeepAndStop = CompatMachine.TestCase
TestCompatKeepAndStop.settings = settings(max_examples=examples(60), stateful_step_count=30,
                                          deadline=None)
