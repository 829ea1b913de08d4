"""A three-state conversation: ask, remind once on silence, then give up."""

import asyncio

from convo_fsm import KEEP, STOP, Engine, Message, On, Spec, State, Timeout, VirtualClock

quiz = Spec(
    name="quiz",
    initial="asking",
    states=[
        State(
            "asking",
            enter=lambda ctx: ctx.reply("What is 6 x 7?"),
            on=[
                On("message", "done", guard=lambda ctx: ctx.text.strip() == "42",
                   action=lambda ctx: ctx.reply("Right!")),
                On("message", KEEP, action=lambda ctx: ctx.reply("No, try again.")),
            ],
            timeout=Timeout(30, "reminded", warn_before=10,
                            warn=lambda ctx: ctx.reply("10 s left")),
        ),
        State(
            "reminded",
            enter=lambda ctx: ctx.reply("Still there? One more chance."),
            on=[On("message", "done", guard=lambda ctx: ctx.text.strip() == "42")],
            timeout=Timeout(30, STOP, action=lambda ctx: ctx.reply("Time's up: it was 42.")),
        ),
        State("done", final=True, enter=lambda ctx: ctx.reply("Thanks for playing.")),
    ],
    any_state=[On("exit", STOP, action=lambda ctx: ctx.reply("Bye."))],
)


async def main() -> None:
    clock = VirtualClock()
    engine = Engine(clock=clock, send=lambda r: print(f"[{clock.now():>4.0f}s] bot: {r.text}"))
    alice = Message("/quiz", sender="alice")
    await engine.start(quiz, engine.key("member", alice), event=alice)
    await engine.dispatch(Message("41", sender="alice"))  # -> No, try again.
    await clock.advance(20)  # -> 10 s left
    await clock.advance(10)  # -> Still there? One more chance.
    await clock.advance(30)  # -> Time's up: it was 42.
    print("live sessions:", len(engine))


if __name__ == "__main__":
    asyncio.run(main())
