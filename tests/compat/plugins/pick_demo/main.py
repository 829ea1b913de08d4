"""A content-dependent session filter, in the style of published AstrBot plugins: only
numeric replies belong to the session; anything else (a /ping) goes to the other handlers
while the pick is open."""

from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.utils.session_waiter import SessionController, SessionFilter, session_waiter


class NumbersOnly(SessionFilter):
    def filter(self, event: AstrMessageEvent) -> str:
        who = f"{event.unified_msg_origin}:{event.get_sender_id()}"
        text = event.message_str.strip()
        # The session's key: its start command and numbers; other messages key elsewhere.
        return who if text.isdigit() or text == "pick" else who + ":not-a-number"


@register("pick_demo", "convo_fsm tests", "Pick by number", "1.0.0")
class PickDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    @filter.command("pick")
    async def pick(self, event: AstrMessageEvent):
        yield event.plain_result("Pick 1, 2 or 3.")

        @session_waiter(timeout=30)
        async def choose(controller: SessionController, ev: AstrMessageEvent):
            n = int(ev.message_str.strip())
            if n not in (1, 2, 3):
                await ev.send(ev.plain_result("Only 1, 2 or 3."))
                return
            await ev.send(ev.plain_result(f"You picked {n}."))
            controller.stop()

        try:
            await choose(event, session_filter=NumbersOnly())
        except TimeoutError:
            yield event.plain_result("No pick.")
        finally:
            event.stop_event()

    @filter.command("ping")
    async def ping(self, event: AstrMessageEvent):
        yield event.plain_result("pong")
