"""Reaching past the decorator, in the style of published AstrBot plugins: an admin ends
someone's chat through USER_SESSIONS (stop() called twice), the waiter runs inside
asyncio.create_task, and `session_waiter(timeout=..)(fn)` is called as a function."""

import asyncio

from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.utils.session_waiter import USER_SESSIONS, SessionController, session_waiter


@register("chat_demo", "convo_fsm tests", "An echo chat an admin can end", "1.0.0")
class ChatDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    @filter.command("chat")
    async def chat(self, event: AstrMessageEvent):
        yield event.plain_result("Echo chat on; bye ends it.")

        async def talk(controller: SessionController, ev: AstrMessageEvent):
            if ev.message_str.strip() == "bye":
                await ev.send(ev.plain_result("Bye."))
                controller.stop()
                controller.stop()  # twice: harmless
                return
            await ev.send(ev.plain_result(f"echo: {ev.message_str}"))
            controller.keep(30, reset_timeout=True)

        waiter = session_waiter(timeout=30)(talk)
        task = asyncio.create_task(waiter(event))
        try:
            await task
            yield event.plain_result("Chat over.")
        except TimeoutError:
            yield event.plain_result("Chat timed out.")
        finally:
            event.stop_event()

    @filter.command("end")
    async def end(self, event: AstrMessageEvent, user: str):
        key = f"{event.get_platform_id()}:FriendMessage:{user}"
        session = USER_SESSIONS.get(key)
        if session is None:
            yield event.plain_result(f"{user} is not chatting.")
            return
        session.session_controller.stop()
        session.session_controller.stop()
        yield event.plain_result(f"Ended {user}'s chat.")
