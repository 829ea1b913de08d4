"""A parent spec that calls a counting child: the sub-conversation the Redis store's and the
fleet's restart tests both resume mid-child (the stack lives in the session's data)."""

from __future__ import annotations

from convo_fsm import KEEP, STOP, Call, Context, On, Spec, State


def count(ctx: Context) -> None:
    ctx.data["n"] = ctx.data.get("n", 0) + 1
    ctx.reply(f"child {ctx.data['n']}")


CHILD = Spec(name="counter-child", initial="counting", states=[
    State("counting", on=[On("message", KEEP, action=count), On("done", "over")]),
    State("over", final=True)])
PARENT = Spec(name="counter-parent", initial="calling", states=[
    State("calling", call=Call(CHILD, on_end={"over": "after"}, data_key="child")),
    State("after", enter=lambda ctx: ctx.reply(f"parent got {ctx.data['child']}"),
          on=[On("message", STOP)])])
