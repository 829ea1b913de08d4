"""Specs the framework adapters' tests share (aiogram, python-telegram-bot, NoneBot2).

Each is a plain convo_fsm Spec: nothing in it knows the framework, except that the form
writes down the type of `ctx.event.native`, which the tests check is the framework's own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convo_fsm import KEEP, STOP, Context, On, Spec, State, Timeout


def say(text: str) -> Callable[[Context], None]:
    def action(ctx: Context) -> None:
        ctx.reply(text)

    action.__qualname__ = f"say({text!r})"
    return action


def is_42(ctx: Context) -> bool:
    return ctx.text.strip() == "42"


QUIZ = Spec(
    name="quiz",
    initial="asking",
    states=[
        State("asking", enter=say("What is 6 x 7?"),
              on=[On("message", "done", guard=is_42, action=say("Right!")),
                  On("message", KEEP, action=say("No, try again."))],
              timeout=Timeout(30, "reminded", warn_before=10, warn=say("10 s left"))),
        # Only the right answer is taken here: anything else goes to the bot's own handlers.
        State("reminded", enter=say("Still there? One more chance."),
              on=[On("message", "done", guard=is_42)],
              timeout=Timeout(30, STOP, action=say("Time's up: it was 42."))),
        State("done", final=True, enter=say("Thanks for playing.")),
    ],
    any_state=[On("exit", STOP, action=say("Bye."))],
)


def _name(ctx: Context) -> None:
    ctx.data["name"] = ctx.text.strip()
    ctx.data["native"] = type(ctx.event.native).__name__
    ctx.reply(f"Hello {ctx.data['name']}. How old are you?")


def _age_ok(ctx: Context) -> bool:
    return ctx.text.strip().isdigit()


def _age(ctx: Context) -> None:
    ctx.data["age"] = int(ctx.text)
    ctx.reply(f"{ctx.data['name']}, {ctx.data['age']}: saved.")


FORM = Spec(
    name="form",
    initial="name",
    states=[
        State("name", enter=say("Your name?"), on=[On("message", "age", action=_name)]),
        State("age", on=[On("message", "saved", guard=_age_ok, action=_age),
                         On("message", KEEP, action=say("A number, please."))]),
        State("saved", final=True),
    ],
)


def _count(ctx: Context) -> None:
    ctx.data["n"] = ctx.data.get("n", 0) + 1
    ctx.reply(f"{ctx.text} ({ctx.data['n']})")


COUNTER = Spec(  # for a group-wide session: anyone in the chat adds to one count
    name="counter",
    initial="counting",
    states=[State("counting", enter=say("Counting."),
                  on=[On("message", KEEP, action=_count), On("end", STOP, action=say("Done."))])],
)


def _boom(ctx: Context) -> Any:
    if ctx.text == "boom":
        raise RuntimeError("the action failed")
    ctx.reply("fine")


FRAGILE = Spec(
    name="fragile",
    initial="on",
    states=[State("on", enter=say("Ready."),
                  on=[On("message", KEEP, action=_boom), On("off", STOP)])],
)
