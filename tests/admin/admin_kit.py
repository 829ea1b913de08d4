"""A small spec and an engine filled with sessions, for the admin tests."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from convo_fsm import KEEP, STOP, Context, Engine, Message, On, Spec, State, Timeout, VirtualClock
from convo_fsm.metrics import Metrics, tee
from convo_fsm.testing import Transcript

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz `dot` is not installed (.ci/run installs it)")

XSS = ('<script>alert(1)</script>', '"><img src=x onerror=alert(2)>')


def remember(ctx: Context) -> None:
    ctx.data.setdefault("said", []).append(ctx.text)
    ctx.reply(f"you said {ctx.text}")


def boom(ctx: Context) -> None:
    raise RuntimeError("boom")


QUIZ = Spec(
    name="quiz",
    initial="asking",
    states=[
        State("asking", on=[On("message", "done", guard=lambda c: c.text == "42"),
                            On("next", "reminded"), On("crash", KEEP, action=boom),
                            On("message", KEEP, action=remember)],
              timeout=Timeout(60, "reminded", warn_before=10, warn=lambda c: c.reply("10 s"))),
        State("reminded", on=[On("message", "done", guard=lambda c: c.text == "42"),
                              On("back", "asking")],
              timeout=Timeout(30, STOP)),
        State("done", final=True),
    ],
    any_state=[On("exit", STOP)],
)


class Kit:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.metrics = Metrics()
        self.transcript = Transcript()
        self.engine = Engine(clock=self.clock, trace=tee(self.transcript, self.metrics))
        self.metrics.bind(self.engine)

    async def start(self, sender: str, **data: Any) -> str:
        msg = Message("/quiz", sender=sender)
        key = self.engine.key("member", msg)
        await self.engine.start(QUIZ, key, event=msg, data=data)
        return key

    async def say(self, sender: str, text: str) -> bool:
        return await self.engine.dispatch(Message(text, sender=sender))


@contextlib.asynccontextmanager
async def serving(asgi: Any) -> AsyncIterator[str]:
    """Serve `asgi` with uvicorn on a free local port in this event loop (the engine's);
    yields the base URL. Waits for the server with a bounded timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=1))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task
        sock.close()
