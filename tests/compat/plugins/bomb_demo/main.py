"""A group game in the style of published AstrBot plugins: a custom filter (groups only)
on the command, a whole-group session (a SessionFilter passed positionally), every member
plays, the range narrows until someone hits the bomb."""

from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.star.filter.custom_filter import CustomFilter
from astrbot.core.utils.session_waiter import SessionController, SessionFilter, session_waiter


class GroupOnly(CustomFilter):
    def filter(self, event: AstrMessageEvent, cfg) -> bool:
        return bool(event.get_group_id())


class WholeGroup(SessionFilter):
    def filter(self, event: AstrMessageEvent) -> str:
        return event.get_group_id() or event.unified_msg_origin


@register("bomb_demo", "convo_fsm tests", "Number bomb for groups", "1.0.0")
class BombDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    @filter.custom_filter(GroupOnly)
    @filter.command("bomb")
    async def bomb(self, event: AstrMessageEvent, low: int = 1, high: int = 30):
        secret = low + (high - low) * 2 // 3
        bounds = {"low": low, "high": high}
        yield event.plain_result(f"A bomb hides in {low}-{high}. Everyone guess!")

        @session_waiter(timeout=60)
        async def play(controller: SessionController, ev: AstrMessageEvent):
            text = ev.message_str.strip()
            if not text.isdigit():
                return  # chatter: the game goes on, the clock too
            n = int(text)
            if not bounds["low"] <= n <= bounds["high"]:
                await ev.send(ev.plain_result(f"Between {bounds['low']} and {bounds['high']}!"))
                return
            if n == secret:
                await ev.send(ev.plain_result(f"BOOM! {ev.get_sender_name()} hit {n}."))
                controller.stop()
                return
            if n < secret:
                bounds["low"] = n + 1
            else:
                bounds["high"] = n - 1
            await ev.send(ev.plain_result(f"Safe. Now {bounds['low']}-{bounds['high']}."))
            controller.keep(60, reset_timeout=True)

        try:
            await play(event, WholeGroup())
        except TimeoutError:
            yield event.plain_result(f"Nobody dared. It was {secret}.")
        finally:
            event.stop_event()
