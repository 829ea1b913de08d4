"""An admin-only confirm/cancel flow in the style of published AstrBot plugins: a
permission filter, a yes/no waiter, `keep(0)` without reset ("keep the time left") on an
unclear answer, a timeout that cancels."""

from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.utils.session_waiter import SessionController, session_waiter


@register("purge_demo", "convo_fsm tests", "Admin purge with confirmation", "1.0.0")
class PurgeDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)
        self.purged = []

    @filter.permission_type(filter.PermissionType.ADMIN)
    @filter.command("purge")
    async def purge(self, event: AstrMessageEvent, target: str):
        yield event.plain_result(f"Purge {target}? Reply yes or no.")

        @session_waiter(timeout=20)
        async def confirm(controller: SessionController, ev: AstrMessageEvent):
            text = ev.message_str.strip().lower()
            if text in ("yes", "y"):
                self.purged.append(target)
                await ev.send(ev.plain_result(f"Purged {target}."))
                controller.stop()
            elif text in ("no", "n"):
                await ev.send(ev.plain_result("Cancelled."))
                controller.stop()
            else:
                await ev.send(ev.plain_result("Please reply yes or no."))
                controller.keep(0)  # no reset: the time left stays

        try:
            await confirm(event)
        except TimeoutError:
            yield event.plain_result("No answer: cancelled.")
        finally:
            event.stop_event()

    @filter.command("purged")
    async def list_purged(self, event: AstrMessageEvent):
        yield event.plain_result("Purged: " + (", ".join(self.purged) or "nothing"))
