"""A report form waiting for a file, in the style of published AstrBot plugins: a reason
in text, then a file or picture (components of the message), or "skip"."""

import astrbot.api.message_components as Comp
from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, register
from astrbot.core.utils.session_waiter import SessionController, session_waiter


@register("report_demo", "convo_fsm tests", "A report form", "1.0.0")
class ReportDemo(Star):
    def __init__(self, context: Context):
        super().__init__(context)
        self.reports = []

    @filter.command("report")
    async def report(self, event: AstrMessageEvent):
        form = {}
        yield event.plain_result("What happened?")

        @session_waiter(timeout=120)
        async def fill(controller: SessionController, ev: AstrMessageEvent):
            if "reason" not in form:
                text = ev.message_str.strip()
                if len(text) < 3:
                    await ev.send(ev.plain_result("Say a bit more, please."))
                    return
                form["reason"] = text
                await ev.send(ev.plain_result("Send a file or a picture (or skip)."))
                controller.keep(120, reset_timeout=True)
                return
            attached = [c for c in ev.get_messages() if isinstance(c, (Comp.File, Comp.Image))]
            if attached:
                first = attached[0]
                form["file"] = first.name if isinstance(first, Comp.File) else "a picture"
            elif ev.message_str.strip() != "skip":
                await ev.send(ev.plain_result("That is not a file. Send one, or skip."))
                return
            self.reports.append(form)
            await ev.send(ev.plain_result(
                f"Report filed: {form['reason']} ({form.get('file', 'no file')})."))
            controller.stop()

        try:
            await fill(event)
        except TimeoutError:
            yield event.plain_result("The report was not filed.")
        finally:
            event.stop_event()
