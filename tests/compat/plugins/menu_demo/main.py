"""A numbered search menu with paging, in the style of published AstrBot plugins: a
GreedyStr query, pages of three, a pick by number, and a new command typed inside the
menu leaves it and is re-dispatched through the event queue (copy.copy + clear_result)."""

import copy

from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.star.filter.command import GreedyStr
from astrbot.core.utils.session_waiter import SessionController, session_waiter

PAGE = 3


@register("menu_demo", "convo_fsm tests", "A paged menu", "1.0.0")
class MenuDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    def page_text(self, items, page):
        start = page * PAGE
        lines = [f"{start + i + 1}. {item}" for i, item in enumerate(items[start:start + PAGE])]
        more = " n: next" if start + PAGE < len(items) else ""
        return "\n".join(lines) + f"\n(page {page + 1}; a number picks;{more})"

    @filter.command("find")
    async def find(self, event: AstrMessageEvent, query: GreedyStr):
        items = [f"{query} #{n}" for n in range(1, 8)]
        state = {"page": 0}
        yield event.plain_result(self.page_text(items, 0))

        @session_waiter(timeout=60)
        async def menu(controller: SessionController, ev: AstrMessageEvent):
            text = ev.message_str.strip()
            if text == "n":
                if (state["page"] + 1) * PAGE < len(items):
                    state["page"] += 1
                await ev.send(ev.plain_result(self.page_text(items, state["page"])))
                controller.keep(60, reset_timeout=True)
            elif text.isdigit() and 1 <= int(text) <= len(items):
                await ev.send(ev.plain_result(f"You picked {items[int(text) - 1]}"))
                controller.stop()
            elif text.startswith("find "):
                await ev.send(ev.plain_result("Leaving the menu."))
                controller.stop()
                again = copy.copy(ev)
                again.clear_result()
                self.context.get_event_queue().put_nowait(again)
            else:
                await ev.send(ev.plain_result("Send a number, n, or a new find."))
                controller.keep(60, reset_timeout=True)

        try:
            await menu(event)
        except TimeoutError:
            yield event.plain_result("Menu closed.")
        finally:
            event.stop_event()
