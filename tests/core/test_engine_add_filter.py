"""Engine.add_filter: a filter kind registered after construction routes like the others."""

from __future__ import annotations

import pytest

from convo_fsm import KEEP, STOP, Engine, Message, On, Spec, State, VirtualClock

echo = Spec(name="echo-add-filter", initial="s",
            states=[State("s", on=[On("message", KEEP, action=lambda c: c.reply(c.text))])],
            any_state=[On("bye", STOP)])


def by_platform(event: Message) -> str:
    return f"platform:{event.platform}"


async def test_added_kind_routes_after_existing_ones() -> None:
    engine = Engine(clock=VirtualClock(), filters={})
    assert not await engine.dispatch(Message("hi", sender="a"))
    engine.add_filter("platform", by_platform)
    engine.add_filter("platform", by_platform)  # same kind and function: a no-op
    await engine.start(echo, engine.key("platform", Message("x", sender="a")))
    assert await engine.dispatch(Message("hi", sender="b"))
    assert [r.text for r in engine.outbox] == ["hi"]
    assert not await engine.dispatch(Message("hi", sender="b", platform="other"))


def test_add_filter_rejects_bad_arguments() -> None:
    engine = Engine(clock=VirtualClock())
    with pytest.raises(ValueError, match="'member' is already registered"):
        engine.add_filter("member", by_platform)
    with pytest.raises(TypeError, match="non-empty str"):
        engine.add_filter("", by_platform)
    with pytest.raises(TypeError, match="must be callable"):
        engine.add_filter("x", "not a function")  # type: ignore[arg-type]
