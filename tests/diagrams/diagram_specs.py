"""Specs the diagram CLI tests name as `diagram_specs:ATTRIBUTE`."""

from convo_fsm import KEEP, STOP, On, Spec, State, Timeout


def right(ctx: object) -> bool:
    return True


QUIZ = Spec(
    name="cli-quiz",
    initial="asking",
    states=[
        State("asking", on=[On("message", "done", guard=right), On("message", KEEP)],
              timeout=Timeout(30, "reminded", warn_before=10, warn=right)),
        State("reminded", on=[On("message", "done", guard=right)], timeout=Timeout(30, STOP)),
        State("done", final=True),
    ],
    any_state=[On("exit", STOP)],
)

ECHO = Spec(name="cli-echo", initial="on", states=[State("on", on=[On("stop", STOP)])])

NOT_A_SPEC = {"name": "quiz"}
