"""NoneBot2 + OneBot v11: its own `got` next to convo_fsm through
`convo_fsm.adapters.nonebot`, offline.

NoneBot is initialised with its "none" driver and the real OneBot v11 adapter; a OneBot
`Bot` object stands for the connected account. Every event (built before timing) goes
through `nonebot.message.handle_event`: event preprocessors, then every matcher by priority
(each matcher's permission and rule checked in its own task, as NoneBot does). No handler
here sends anything. Modes (the system under test):

- `bare`: the same bot without conversations (an `on_command("start")` matcher whose handler
  does nothing, and the catch-all `on_message` matcher): NoneBot's bare dispatch of an
  ordinary message (the adapter's reference; N is irrelevant);
- `got`: `on_command("start")` with a `got("answer")` handler that calls `reject()`, so the
  user keeps waiting (NoneBot keeps one *temporary matcher* per waiting user, checked against
  every later event); a catch-all matcher after it;
- `convo`: the same bot with convo_fsm's `Conversations`: `/start` starts the waiter spec
  (a `KEEP` transition with an async no-op action, timeout 60 s reset each message).

Workloads: `deliver` (a message from one of N waiting users, random), `ordinary` (from
someone not waiting: it reaches the catch-all matcher), `memory` (tracemalloc bytes added
per waiting user by N `/start` events).

`got`'s set-up through N `/start` events would be O(N^2): each is checked against the
temporary matchers of everyone already waiting (about 0.3 s per `/start` at 1k waiting on
this machine). So the first user's `/start` goes through `handle_event`, and the other N-1
temporary matchers are made by the call NoneBot itself makes when a `got` pauses
(`Matcher.new(type, Rule(), permission for that user, remaining handlers, temp=True,
priority=0, block=True, ...)`, the permission from `Matcher.update_permission` on the user's
own `/start` event); the run then checks that a random waiting user's message reaches the
`got` handler and an ordinary one does not.
"""

from __future__ import annotations

import gc
import itertools
import tracemalloc
from typing import Any

import nonebot

nonebot.init(driver="~none", log_level="WARNING", command_start={"/"})

from nonebot.adapters.onebot.v11 import Adapter, Bot, Message, PrivateMessageEvent  # noqa: E402
from nonebot.adapters.onebot.v11.event import Sender  # noqa: E402
from nonebot.matcher import Matcher, matchers  # noqa: E402
from nonebot.message import handle_event  # noqa: E402
from nonebot.rule import Rule  # noqa: E402

from benchmarks.common import framework_main, framework_smoke, seeded, summary, timed_async  # noqa: E402
from convo_fsm import KEEP, STOP, On, Spec, State, Timeout  # noqa: E402
from convo_fsm.adapters.nonebot import Conversations  # noqa: E402

MODES = ("bare", "got", "convo")
SELF = 10000
_ids = itertools.count(1)


async def handler(ctx: Any) -> None:
    """The conversation's handler: nothing to do; the transition keeps the session."""


WAITER = Spec(
    name="waiter",
    initial="waiting",
    states=[State("waiting", on=[On("message", KEEP, action=handler), On("stop", STOP)],
                  timeout=Timeout(60, STOP))],
)


def event(user: int, text: str) -> PrivateMessageEvent:
    return PrivateMessageEvent(
        time=0, self_id=SELF, post_type="message", sub_type="friend", user_id=user,
        message_type="private", message_id=next(_ids), message=Message(text),
        original_message=Message(text), raw_message=text, font=0,
        sender=Sender(user_id=user, nickname="u"), to_me=True)


class Counts:
    """How often the catch-all matcher and the `got` handler ran."""

    def __init__(self) -> None:
        self.ordinary = 0
        self.got = 0
        self.start: type[Matcher] | None = None
        self.conv: Conversations | None = None


def build(mode: str) -> tuple[Bot, Counts]:
    """The bot and the counts of its handlers' runs."""
    driver = nonebot.get_driver()
    if Adapter.get_name() not in nonebot.get_adapters():
        driver.register_adapter(Adapter)
    bot = Bot(nonebot.get_adapter(Adapter), str(SELF))
    counts = Counts()
    if mode == "convo":
        counts.conv = Conversations()
        counts.conv.command("start", WAITER, priority=5)
    elif mode == "bare":
        @nonebot.on_command("start", priority=5, block=True).handle()
        async def nothing() -> None:
            pass
    elif mode == "got":
        start = counts.start = nonebot.on_command("start", priority=5, block=True)

        @start.got("answer")
        async def keep(matcher: Matcher) -> None:
            counts.got += 1
            await matcher.reject()  # wait again for the next message (a new temporary matcher)

    catch_all = nonebot.on_message(priority=10, block=True)

    @catch_all.handle()
    async def count() -> None:
        counts.ordinary += 1

    return bot, counts


async def start_all(bot: Bot, counts: Counts, size: int, mode: str) -> None:
    if mode == "bare":
        for i in range(size):  # (what NoneBot keeps per user of a command: memory only)
            await handle_event(bot, event(10 + i, "/start"))
        return
    if size == 0:
        return
    if mode == "convo":
        # `/start` through handle_event costs NoneBot's command matching (~4 ms here, sync
        # dependencies in worker threads): the first user's goes that way; the others start
        # the same session through `Conversations.start` with their own `/start` event.
        await handle_event(bot, event(10, "/start"))
        assert counts.conv is not None and len(counts.conv.engine) == 1
        for i in range(1, size):
            await counts.conv.start(WAITER, event(10 + i, "/start"))
        assert len(counts.conv.engine) == size
        return
    assert counts.start is not None
    await handle_event(bot, event(10, "/start"))
    (first,) = matchers[0]  # the temporary matcher NoneBot made for user 10's got
    for i in range(1, size):  # the same for the other users (see the module's docstring)
        permission = await first().update_permission(bot, event(10 + i, "/start"))
        counts.start.new(first.type, Rule(), permission, list(first.handlers), temp=True,
                         priority=0, block=True, source=first._source,
                         expire_time=bot.config.session_expire_timeout,
                         default_state=dict(first._default_state),
                         default_type_updater=first._default_type_updater,
                         default_permission_updater=first._default_permission_updater)
    assert len(matchers[0]) == size


async def per_event(workload: str, size: int, events: int, reps: int, budget: float,
                    mode: str) -> dict[str, Any]:
    bot, counts = build(mode)
    await start_all(bot, counts, 0 if mode == "bare" else size, mode)
    rnd = seeded()
    count = min(events, 20_000)
    if workload == "deliver":
        if mode == "bare":
            raise SystemExit("deliver needs waiting users: modes got or convo")
        msgs = [event(10 + rnd.randrange(size), "hi") for _ in range(count)]
    else:
        msgs = [event(10_000_000 + i, "hello") for i in range(count)]

    async def one(e: PrivateMessageEvent) -> None:
        await handle_event(bot, e)

    await one(msgs[0])
    before, got_before = counts.ordinary, counts.got
    await one(msgs[1 % len(msgs)])
    # A delivery must not reach the catch-all matcher (with got: it reaches the got handler);
    # an ordinary message must.
    assert counts.ordinary - before == (0 if workload == "deliver" else 1), (workload, mode)
    if mode == "got":
        assert counts.got - got_before == (1 if workload == "deliver" else 0)
        assert len(matchers[0]) == size  # the waiting user waits again
    gc.collect()
    per = []
    for _ in range(reps):
        n, secs = await timed_async(one, msgs, events, budget)
        per.append(secs / n * 1e6)
    return {"us_per_event": summary(per), "reps_us": per}


async def memory(size: int, mode: str) -> dict[str, Any]:
    bot, counts = build(mode)
    await handle_event(bot, event(1, "warm-up"))  # first-call caches, not per user
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await start_all(bot, counts, size, mode)  # each event is dropped once handled
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return {"bytes_per_session": (after - before) / size, "total_bytes": after - before}


async def smoke() -> dict[str, Any]:
    """Every mode and workload once at a tiny size, in one process (the test suite's check);
    each job's matchers are removed before the next."""
    return await framework_smoke(MODES, per_event, memory, matchers.clear)


def main() -> None:
    framework_main("nonebot", MODES, per_event, memory, smoke)


if __name__ == "__main__":
    main()
