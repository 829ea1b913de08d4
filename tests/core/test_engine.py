"""The engine under a virtual clock: routing, turns, timers, faults, policies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from convo_fsm import (
    ANY,
    KEEP,
    STOP,
    Busy,
    Context,
    Ended,
    Engine,
    EventError,
    LimitError,
    Message,
    On,
    Reply,
    SessionExists,
    Spec,
    State,
    Timeout,
    VirtualClock,
)


class Bot:
    """An engine on a virtual clock that collects replies and endings."""

    def __init__(self, **kw: Any) -> None:
        self.clock = VirtualClock()
        self.replies: list[Reply] = []
        self.ended: list[Ended] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.engine = Engine(clock=self.clock, send=self.replies.append,
                             on_end=self.ended.append,
                             on_error=lambda k, e: self.errors.append((k, e)), **kw)

    def texts(self) -> list[str]:
        out = [r.text for r in self.replies]
        self.replies.clear()
        return out

    async def start(self, spec: Spec, sender: str = "alice", group: str | None = None,
                    **kw: Any) -> str:
        msg = Message("/start", sender=sender, group=group)
        key = self.engine.key("member", msg)
        await self.engine.start(spec, key, event=msg, **kw)
        return key

    async def say(self, text: str, sender: str = "alice", group: str | None = None) -> bool:
        return await self.engine.dispatch(Message(text, sender=sender, group=group))


def say(text: str) -> Any:
    return lambda ctx: ctx.reply(text)


def echo(ctx: Context) -> None:
    ctx.reply(f"echo {ctx.text}")


QUIZ = Spec(
    name="quiz",
    initial="asking",
    states=[
        State("asking", enter=say("question"),
              on=[On("message", "done", guard=lambda c: c.text == "42"),
                  On("message", KEEP, action=say("wrong"))],
              timeout=Timeout(30, "reminded", warn_before=10, warn=say("10 s left"))),
        State("reminded", enter=say("still there?"),
              on=[On("message", "done", guard=lambda c: c.text == "42")],
              timeout=Timeout(30, STOP, action=say("time's up"))),
        State("done", final=True, enter=say("right")),
    ],
    any_state=[On("exit", STOP, action=say("bye"))],
)


async def test_timeout_moves_to_another_state_with_warning_first() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    assert bot.texts() == ["question"]
    await bot.clock.advance(19.9)
    assert bot.texts() == []
    await bot.clock.advance(0.1)
    assert bot.texts() == ["10 s left"]
    await bot.clock.advance(10)
    assert bot.texts() == ["still there?"]
    session = bot.engine.session(key)
    assert session is not None and session.state == "reminded"
    assert session.deadline == pytest.approx(60.0)
    await bot.clock.advance(30)
    assert bot.texts() == ["time's up"]
    assert bot.engine.session(key) is None
    assert [e.reason for e in bot.ended] == ["timeout"]


async def test_timers_fire_exactly_at_their_deadline() -> None:
    seen: list[float] = []
    spec = Spec(name="t", initial="a", states=[
        State("a", timeout=Timeout(7.5, STOP, action=lambda c: seen.append(c.now),
                                   warn_before=2.5, warn=lambda c: seen.append(c.now)))])
    bot = Bot()
    await bot.start(spec)
    await bot.clock.advance(100)
    assert seen == [5.0, 7.5]


async def test_keep_resets_the_timeout_and_rearms_the_warning() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    await bot.clock.advance(25)  # warning fired at 20
    assert bot.texts() == ["question", "10 s left"]
    assert await bot.say("41")
    assert bot.texts() == ["wrong"]
    session = bot.engine.session(key)
    assert session is not None and session.deadline == pytest.approx(55.0)
    await bot.clock.advance(19)  # t=44 < 45: no warning yet
    assert bot.texts() == []
    await bot.clock.advance(1)
    assert bot.texts() == ["10 s left"]
    assert bot.engine.session(key).state == "asking"  # type: ignore[union-attr]


async def test_final_state_ends_the_session_after_its_enter_action() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    assert await bot.say("42")
    assert bot.texts() == ["question", "right"]
    assert key not in bot.engine
    assert bot.ended[-1].reason == "final"
    assert bot.engine.pending_timers() == 0


async def test_any_state_exit_and_stop() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    await bot.clock.advance(31)
    assert await bot.say("/exit")
    assert bot.texts()[-1] == "bye"
    assert bot.ended[-1].reason == "stop"
    key2 = await bot.start(QUIZ)
    assert key2 == key
    assert bot.engine.stop(key, "admin")
    assert not bot.engine.stop(key)
    assert bot.ended[-1].reason == "admin"
    await bot.clock.advance(1000)
    assert bot.texts() == ["question"]  # nothing fired after the stop


async def test_events_no_session_wants_are_handed_back() -> None:
    bot = Bot()
    assert not await bot.say("hello")  # no session at all
    await bot.start(QUIZ, sender="alice")
    assert not await bot.say("hello", sender="bob")  # another key
    assert not await bot.say("/dance")  # the state has no transition for it
    assert bot.engine.session("local:user:alice").state == "asking"  # type: ignore[union-attr]


async def test_routing_per_member_and_per_group() -> None:
    group_spec = Spec(name="team", initial="a",
                      states=[State("a", on=[On("message", KEEP, action=echo),
                                             On("stop", STOP)])])
    bot = Bot()
    await bot.start(QUIZ, sender="alice", group="g1")  # per member
    grp = bot.engine.key("group", Message("x", sender="carol", group="g2"))
    await bot.engine.start(group_spec, grp)
    bot.texts()
    assert await bot.say("41", sender="alice", group="g1")
    assert not await bot.say("41", sender="bob", group="g1")  # bob has no session in g1
    assert await bot.say("hi", sender="dave", group="g2")  # anyone in g2 shares it
    assert await bot.say("yo", sender="carol", group="g2")
    assert bot.texts() == ["wrong", "echo hi", "echo yo"]
    assert {r.to for r in bot.engine.outbox} == set()  # custom send: outbox unused


async def test_garbage_event_is_a_clear_error_and_loses_nothing() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    with pytest.raises(EventError, match="int"):
        await bot.engine.dispatch(12345)
    with pytest.raises(EventError, match="classify"):
        await bot.engine.deliver(key, 12345)
    assert bot.engine.session(key).state == "asking"  # type: ignore[union-attr]
    assert not list(bot.engine.busy_keys())
    assert await bot.say("42")


async def test_start_validates_its_arguments() -> None:
    bot = Bot()
    with pytest.raises(TypeError, match="Spec"):
        await bot.engine.start("quiz", "k")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        await bot.engine.start(QUIZ, "")
    with pytest.raises(TypeError, match="JSON"):
        await bot.engine.start(QUIZ, "k", data={"when": object()})
    with pytest.raises(KeyError, match="no filter kind"):
        bot.engine.key("planet", Message("x", sender="a"))
    with pytest.raises(TypeError, match="sender"):
        Message("hi", sender="")
    assert len(bot.engine) == 0


async def test_reject_is_the_default_and_replace_ends_the_old_one() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    with pytest.raises(SessionExists, match="already has a live 'quiz' session"):
        await bot.start(QUIZ)
    assert bot.engine.session(key).state == "asking"  # type: ignore[union-attr]
    await bot.clock.advance(31)  # old one is in "reminded"
    await bot.start(QUIZ, replace=True)
    assert bot.ended[-1].reason == "replaced"
    assert bot.engine.session(key).state == "asking"  # type: ignore[union-attr]


async def test_end_of_an_old_session_never_removes_a_newer_one() -> None:
    gate = asyncio.Event()

    async def slow(ctx: Context) -> None:
        await gate.wait()
        ctx.reply("slow done")

    spec = Spec(name="slow", initial="a",
                states=[State("a", on=[On("message", STOP, action=slow)])])
    bot = Bot()
    key = await bot.start(spec)
    old_turn = asyncio.create_task(bot.say("go"))
    await asyncio.sleep(0)
    # The old session is replaced while its action runs; the action is cancelled and
    # its STOP must not end the new session.
    await bot.start(QUIZ, replace=True)
    gate.set()
    assert await old_turn
    session = bot.engine.session(key)
    assert session is not None and session.spec == "quiz"
    assert [e.reason for e in bot.ended] == ["replaced"]
    assert "slow done" not in bot.texts()


async def test_one_event_at_a_time_per_key_in_arrival_order() -> None:
    log: list[str] = []
    running = 0

    async def work(ctx: Context) -> None:
        nonlocal running
        running += 1
        assert running == 1
        log.append(f"start {ctx.text}")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        log.append(f"end {ctx.text}")
        running -= 1

    spec = Spec(name="serial", initial="a",
                states=[State("a", on=[On("message", KEEP, action=work), On("q", STOP)])])
    bot = Bot()
    await bot.start(spec)
    results = await asyncio.gather(*(bot.say(str(i)) for i in range(5)))
    assert results == [True] * 5
    assert log == [f"{w} {i}" for i in range(5) for w in ("start", "end")]
    assert not list(bot.engine.busy_keys())  # the inbox is gone once the key is idle


async def test_queued_events_are_handed_back_when_the_session_ends() -> None:
    gate = asyncio.Event()

    async def finish(ctx: Context) -> None:
        await gate.wait()

    spec = Spec(name="q", initial="a",
                states=[State("a", on=[On("message", STOP, action=finish)])])
    bot = Bot()
    await bot.start(spec)
    first = asyncio.create_task(bot.say("one"))
    await asyncio.sleep(0)
    queued = [asyncio.create_task(bot.say(t)) for t in ("two", "three")]
    await asyncio.sleep(0)
    gate.set()
    assert await first is True
    assert [await q for q in queued] == [False, False]  # not swallowed: given back


async def test_queue_limit_hands_back_the_overflow() -> None:
    gate = asyncio.Event()

    async def block(ctx: Context) -> None:
        await gate.wait()

    spec = Spec(name="small", initial="a", queue_limit=2,
                states=[State("a", on=[On("message", KEEP, action=block), On("q", STOP)])])
    bot = Bot()
    await bot.start(spec)
    tasks = [asyncio.create_task(bot.say(str(i))) for i in range(4)]
    for _ in range(3):
        await asyncio.sleep(0)
    gate.set()
    assert [await t for t in tasks] == [True, True, True, False]


async def test_busy_drop_policy_answers_and_drops() -> None:
    gate = asyncio.Event()

    async def block(ctx: Context) -> None:
        await gate.wait()

    spec = Spec(name="drop", initial="a", busy=Busy.DROP, busy_reply="busy!",
                states=[State("a", on=[On("message", KEEP, action=block), On("q", STOP)])])
    bot = Bot()
    await bot.start(spec)
    first = asyncio.create_task(bot.say("1"))
    await asyncio.sleep(0)
    assert await bot.say("2") is True
    assert bot.texts() == ["busy!"]
    gate.set()
    assert await first


async def test_busy_interrupt_policy_cancels_the_running_action() -> None:
    seen: list[str] = []

    async def think(ctx: Context) -> None:
        seen.append(f"begin {ctx.text}")
        await asyncio.Event().wait()  # never finishes on its own
        seen.append("unreachable")

    def quick(ctx: Context) -> None:
        seen.append(f"quick {ctx.text}")

    spec = Spec(name="int", initial="a", busy=Busy.INTERRUPT,
                states=[State("a", on=[On("slow", KEEP, action=think),
                                       On("message", KEEP, action=quick), On("q", STOP)])])
    bot = Bot()
    await bot.start(spec)
    first = asyncio.create_task(bot.say("/slow"))
    await asyncio.sleep(0)
    assert await bot.say("now")
    assert await first  # the interrupted event was still consumed
    assert seen == ["begin /slow", "quick now"]


async def test_exception_in_action_is_contained() -> None:
    def boom(ctx: Context) -> None:
        raise ValueError("bad idiom")

    spec = Spec(name="boom", initial="a",
                states=[State("a", on=[On("message", KEEP, action=boom), On("q", STOP)])])
    bot = Bot()
    await bot.start(spec, sender="alice")
    await bot.start(QUIZ, sender="bob")
    assert await bot.say("x", sender="alice")
    assert "local:user:alice" not in bot.engine
    assert bot.ended[-1].reason == "error"
    assert isinstance(bot.ended[-1].error, ValueError)
    assert bot.errors[0][0] == "local:user:alice"
    assert await bot.say("42", sender="bob")  # others carry on
    assert bot.ended[-1].reason == "final"


async def test_exception_in_guard_and_async_guard() -> None:
    async def is_yes(ctx: Context) -> bool:
        await asyncio.sleep(0)
        return ctx.text == "yes"

    def broken(ctx: Context) -> bool:
        raise KeyError("score")

    spec = Spec(name="g", initial="a",
                states=[State("a", on=[On("message", "b", guard=is_yes),
                                       On("oops", STOP, guard=broken),
                                       On("message", KEEP, action=say("say yes"))]),
                        State("b", final=True, enter=say("ok"))])
    bot = Bot()
    await bot.start(spec)
    assert await bot.say("no")
    assert await bot.say("yes")
    assert bot.texts() == ["say yes", "ok"]
    await bot.start(spec)
    assert await bot.say("/oops")
    assert bot.ended[-1].reason == "error"
    assert isinstance(bot.ended[-1].error, KeyError)


async def test_timeout_cancels_a_running_action() -> None:
    progress: list[str] = []

    async def long_job(ctx: Context) -> None:
        progress.append("started")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            progress.append("cancelled")
            raise

    spec = Spec(name="long", initial="a",
                states=[State("a", on=[On("message", KEEP, action=long_job,
                                          reset_timeout=False)],
                              timeout=Timeout(5, STOP, action=say("too slow")))])
    bot = Bot()
    key = await bot.start(spec)
    turn = asyncio.create_task(bot.say("work"))
    await asyncio.sleep(0)
    await bot.clock.advance(5)
    assert await turn is True
    assert progress == ["started", "cancelled"]
    assert bot.texts() == ["too slow"]
    assert key not in bot.engine
    assert not list(bot.engine.busy_keys())
    assert not asyncio.current_task().cancelling()  # type: ignore[union-attr]


async def test_stop_cancels_a_running_action_but_not_the_caller() -> None:
    async def long_job(ctx: Context) -> None:
        await asyncio.Event().wait()

    spec = Spec(name="long2", initial="a",
                states=[State("a", on=[On("message", KEEP, action=long_job), On("q", STOP)])])
    bot = Bot()
    key = await bot.start(spec)
    turn = asyncio.create_task(bot.say("work"))
    await asyncio.sleep(0)
    assert bot.engine.stop(key)
    assert await turn is True
    assert turn.cancelling() == 0
    assert not list(bot.engine.busy_keys())


async def test_an_action_can_stop_its_own_session_and_finish() -> None:
    engine_ref: list[Engine] = []

    async def quit_now(ctx: Context) -> None:
        engine_ref[0].stop(ctx.key, "self")
        await asyncio.sleep(0)
        ctx.reply("still finishing")

    spec = Spec(name="self", initial="a",
                states=[State("a", on=[On("message", KEEP, action=quit_now), On("q", STOP)])])
    bot = Bot()
    engine_ref.append(bot.engine)
    await bot.start(spec)
    assert await bot.say("x")
    assert bot.texts() == ["still finishing"]
    assert bot.ended[-1].reason == "self"


async def test_limits_give_clear_errors() -> None:
    bot = Bot(max_sessions=2)
    await bot.start(QUIZ, sender="a")
    await bot.start(QUIZ, sender="b")
    with pytest.raises(LimitError, match="2 live sessions"):
        await bot.start(QUIZ, sender="c")
    assert len(bot.engine) == 2


async def test_introspection_force_and_set_deadline() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    await bot.clock.advance(12)
    [info] = bot.engine.sessions()
    assert (info.key, info.spec, info.state, info.seconds_left) == (key, "quiz", "asking", 18.0)
    bot.engine.force(key, "reminded")
    assert bot.engine.session(key).deadline == pytest.approx(42.0)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="no state 'nowhere'"):
        bot.engine.force(key, "nowhere")
    bot.engine.set_deadline(key, 15.0)
    await bot.clock.advance(3)
    assert key not in bot.engine
    assert bot.ended[-1].reason == "timeout"
    with pytest.raises(KeyError):
        bot.engine.force(key, "asking")


async def test_wait_ended_reports_the_reason() -> None:
    bot = Bot()
    key = await bot.start(QUIZ)
    ended = bot.engine.wait_ended(key)
    await bot.clock.advance(60)
    assert (await ended).reason == "timeout"


async def test_outdated_timers_are_compacted() -> None:
    spec = Spec(name="churn", initial="a",
                states=[State("a", on=[On(ANY, KEEP)], timeout=Timeout(60, STOP))])
    bot = Bot()
    keys = [await bot.start(spec, sender=f"u{i}") for i in range(10)]
    for _ in range(500):
        for i in range(10):
            await bot.say("x", sender=f"u{i}")
    # 5,000 re-arms of 10 sessions: the heap is compacted, not grown without bound.
    assert bot.engine.footprint()["heap"] <= 4 * len(keys) + 1024 + 2
    assert bot.engine.pending_timers() == 10
    await bot.clock.advance(60)
    assert len(bot.engine) == 0


async def test_close_ends_everything() -> None:
    bot = Bot()
    await bot.start(QUIZ, sender="a")
    await bot.start(QUIZ, sender="b")
    await bot.engine.close()
    assert len(bot.engine) == 0
    assert {e.reason for e in bot.ended} == {"closed"}


async def test_asyncio_clock_fires_in_real_time_without_a_task_per_session() -> None:
    # The only test on the real loop clock: a 10 ms timeout, awaited through wait_ended.
    fired: list[str] = []
    spec = Spec(name="rt", initial="a",
                states=[State("a", timeout=Timeout(0.01, STOP,
                                                   action=lambda c: fired.append(c.key)))])
    async with Engine() as engine:
        tasks_before = len(asyncio.all_tasks())
        for i in range(50):
            await engine.start(spec, f"k{i}")
        assert len(asyncio.all_tasks()) == tasks_before
        ended = engine.wait_ended("k49")
        await asyncio.wait_for(ended, 5)
        while len(engine):
            await asyncio.wait_for(engine.wait_ended(engine.sessions()[0].key), 5)
    assert sorted(fired) == sorted(f"k{i}" for i in range(50))
