"""The conversation of README's framework section: name, then age, with a warning and timeouts.

The same `Spec` runs under aiogram, python-telegram-bot and NoneBot2 (examples/*_signup.py).
"""

from convo_fsm import KEEP, STOP, Context, On, Spec, State, Timeout


def ask_age(ctx: Context) -> None:
    ctx.data["name"] = ctx.text.strip()
    ctx.reply(f"Hi {ctx.data['name']}! How old are you?")


def save(ctx: Context) -> None:
    ctx.reply(f"Saved: {ctx.data['name']}, {ctx.text.strip()}.")


signup = Spec(
    name="signup",
    initial="name",
    states=[
        State("name", enter=lambda ctx: ctx.reply("Your name?"),
              on=[On("message", "age", action=ask_age)],
              timeout=Timeout(60, STOP, action=lambda ctx: ctx.reply("Too slow, bye."))),
        State("age",
              on=[On("message", "done", guard=lambda ctx: ctx.text.strip().isdigit(),
                     action=save),
                  On("message", KEEP, action=lambda ctx: ctx.reply("A number, please."))],
              # Silence here moves on with what we have, after a warning.
              timeout=Timeout(60, "done", warn_before=15,
                              warn=lambda ctx: ctx.reply("15 s left to give your age."),
                              action=lambda ctx: ctx.reply("Saved without an age."))),
        State("done", final=True),
    ],
    any_state=[On("cancel", STOP, action=lambda ctx: ctx.reply("Cancelled."))],
)
