"""Workload 6: one event applied to one of N live conversations, without an engine.

Every system does the same work per event: find the transition for `message` in the
session's state, run the handler (a no-op function), and restart the state's 60 s
timeout (new deadline, new generation). Systems:

- `convo-step`: `convo_fsm.step` on the frozen `Session` (a new one per event), the
  `Input` built per event as the engine builds it;
- `convo-step-call`: the same spec run as a sub-conversation (the child of a calling state,
  `Call`), the event stepped through the root session as the engine does; its job also
  times `convo-step` rep for rep (`interleaved_ratio_to_top_level`);
- `dict-fsm`: a hand-written FSM over a nested dict table and a mutable dict per session
  (the floor for the same work);
- `dict-lookup`: `state = TABLE[state][event]` alone (the floor of the floor);
- `transitions`: one `transitions.Machine` per session (as its users write it), an
  internal transition whose `after` callback runs the handler and sets the deadline;
- `transitions-async`: the same with `AsyncMachine`, awaited.

Also reported: the cost of creating one session (µs) and the RSS it adds (bytes).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable
from typing import Any

from transitions import Machine
from transitions.extensions.asyncio import AsyncMachine

from benchmarks.common import emit, parse, rss_bytes, seeded, summary
from convo_fsm import (
    KEEP,
    STOP,
    Call,
    Context,
    Input,
    On,
    Run,
    Spec,
    State,
    Timeout,
    new_session,
    step,
)

SYSTEMS = ("convo-step", "convo-step-call", "dict-fsm", "dict-lookup", "transitions",
           "transitions-async")
TIMEOUT = 60.0


def handler(ctx: Any) -> None:
    """The conversation's handler: nothing to do."""


SPEC = Spec(name="waiter", initial="waiting", states=[
    State("waiting", on=[On("message", KEEP, action=handler), On("stop", STOP)],
          timeout=Timeout(TIMEOUT, STOP))])
PARENT = Spec(name="caller", initial="calling", states=[
    State("calling", call=Call(SPEC, on_end={"*": STOP}))])


def _started(spec: Spec, key: str) -> Any:
    """A new session with its start's stack write done (the engine runs it as an action)."""
    first = new_session(spec, key, 0.0)
    ctx = Context(first.session, None, "start", 0.0, lambda reply: None)
    for effect in first.effects:
        if type(effect) is Run and effect.action.__name__ == "call_stack":
            effect.action(ctx)
    return first.session


# -- the hand-written dict FSM: the same table, deadline, generation and effects -------------
DICT_TABLE: dict[str, dict[str, tuple[str | None, Any]]] = {
    "waiting": {"message": ("waiting", handler), "stop": (None, None)},
}
DICT_TIMEOUTS: dict[str, float] = {"waiting": TIMEOUT}


def dict_new(key: str, now: float) -> dict[str, Any]:
    return {"key": key, "state": "waiting", "data": {}, "deadline": now + TIMEOUT,
            "generation": 0, "history": ["waiting"], "updated": now}


def dict_step(session: dict[str, Any], event: str, now: float) -> list[tuple[Any, ...]] | None:
    row = DICT_TABLE[session["state"]]
    found = row.get(event)
    if found is None:
        return None
    target, action = found
    effects: list[tuple[Any, ...]] = []
    if target is None:
        session["deadline"] = None
        effects.append(("arm", None))
        effects.append(("end", "stop"))
    else:
        after = DICT_TIMEOUTS.get(target)
        session["deadline"] = None if after is None else now + after
        session["generation"] += 1
        if target != session["state"]:
            session["history"] = [*session["history"][-7:], target]
            session["state"] = target
        effects.append(("arm", session["deadline"]))
    if action is not None:
        effects.append(("run", action))
    session["updated"] = now
    return effects


def setup(system: str, size: int) -> tuple[dict[str, Any], Callable[[str, float], Any]]:
    """N sessions keyed u0..u{N-1}, and `one(key, now)` applying one message event."""
    if system in ("convo-step", "convo-step-call"):
        spec = SPEC if system == "convo-step" else PARENT
        sessions: dict[str, Any] = {f"u{i}": _started(spec, f"u{i}") for i in range(size)}

        def one(key: str, now: float) -> Any:
            result = step(spec, sessions[key], Input("message", "hi"), now)
            sessions[key] = result.session
            return result.effects

        return sessions, one
    if system == "dict-fsm":
        sessions = {f"u{i}": dict_new(f"u{i}", 0.0) for i in range(size)}

        def one(key: str, now: float) -> Any:
            return dict_step(sessions[key], "message", now)

        return sessions, one
    if system == "dict-lookup":
        table = {"waiting": {"message": "waiting", "stop": "ended"}}
        states = {f"u{i}": "waiting" for i in range(size)}

        def one(key: str, now: float) -> Any:
            states[key] = table[states[key]]["message"]

        return states, one
    class Model:
        def __init__(self) -> None:
            self.deadline = 0.0
            self.now = 0.0

        def on_message(self) -> None:
            handler(self)
            self.deadline = self.now + TIMEOUT

    cls = AsyncMachine if system == "transitions-async" else Machine
    models: dict[str, Any] = {}
    for i in range(size):
        model = Model()
        cls(model=model, states=["waiting", "ended"], initial="waiting", transitions=[
            {"trigger": "message", "source": "waiting", "dest": None, "after": "on_message"},
            {"trigger": "stop", "source": "waiting", "dest": "ended"}])
        models[f"u{i}"] = model
    if system == "transitions-async":
        async def one_async(key: str, now: float) -> Any:
            model = models[key]
            model.now = now
            return await model.message()

        return models, one_async

    def one(key: str, now: float) -> Any:
        model = models[key]
        model.now = now
        return model.message()

    return models, one


def run(system: str, size: int, events: int, reps: int, budget: float) -> dict[str, Any]:
    gc.collect()
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    _, one = setup(system, size)
    create_us = (time.perf_counter() - t0) / size * 1e6
    gc.collect()
    rss_per_session = (rss_bytes() - rss0) / size
    rnd = seeded()
    keys = [f"u{rnd.randrange(size)}" for _ in range(min(events, 50_000))]
    gc.collect()  # settle the set-up's garbage; GC then runs as the system leaves it
    per_event = []
    clock = time.perf_counter
    if system == "transitions-async":
        async def drive() -> None:
            for _ in range(reps):
                done, t = 0, clock()
                while done < events and (done == 0 or clock() - t < budget):
                    for i in range(done, min(done + 1000, events)):
                        await one(keys[i % len(keys)], i * 0.001)
                    done = min(done + 1000, events)
                per_event.append((clock() - t) / done * 1e6)

        asyncio.run(drive())
    else:
        def rep(one: Callable[[str, float], Any]) -> float:
            done, t = 0, clock()
            while done < events and (done == 0 or clock() - t < budget):
                for i in range(done, min(done + 1000, events)):
                    one(keys[i % len(keys)], i * 0.001)
                done = min(done + 1000, events)
            return (clock() - t) / done * 1e6

        # The step's own job also times the dict FSM, rep for rep in turn with it: on a
        # shared machine the load changes between jobs, and this ratio does not see it.
        floor = (setup("dict-fsm", size)[1] if system == "convo-step"
                 else setup("convo-step", size)[1] if system == "convo-step-call" else None)
        ratios = []
        for _ in range(reps):
            per_event.append(rep(one))
            if floor is not None:
                ratios.append(per_event[-1] / rep(floor))
        if ratios:
            name = ("interleaved_ratio_to_dict_fsm" if system == "convo-step"
                    else "interleaved_ratio_to_top_level")
            return {"us_per_event": summary(per_event), "reps_us": per_event,
                    "create_us": create_us, "rss_per_session": rss_per_session,
                    name: summary(ratios)}
    return {"us_per_event": summary(per_event), "reps_us": per_event,
            "create_us": create_us, "rss_per_session": rss_per_session}


def main() -> None:
    args = parse(workloads=SYSTEMS)
    result = run(args.workload, args.size, args.events, args.reps, args.budget)
    emit(system=args.workload, workload="step", mode="", size=args.size, **result)


if __name__ == "__main__":
    main()
