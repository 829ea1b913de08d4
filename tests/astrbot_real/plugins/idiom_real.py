# ruff: noqa: E501, I001, RUF100, SIM105, B904
"""The idiom-chain example of AstrBot's "Session control" guide as a plugin for *real*
AstrBot 4.29.3 that switched to convo_fsm: the only change is the session_waiter import
(`astrbot.core.utils.session_waiter` -> `convo_fsm.adapters.astrbot`); the rest is
AstrBot (no routing line: importing the adapter registers its routing with AstrBot).
`QuizPlugin` shows a convo_fsm Spec as a command.
"""

import astrbot.api.message_components as Comp
from convo_fsm.adapters.astrbot import (
    session_waiter,
    SessionController,
    SessionFilter,
    spec_command,
)
from astrbot.api.event import filter, AstrMessageEvent
from astrbot.api.star import Context, Star
from astrbot.api import logger

from convo_fsm import KEEP, STOP, On, Spec, State, Timeout


class IdiomChain(Star):
    def __init__(self, context: Context):
        super().__init__(context)

    @filter.command("idiom-chain")
    async def handle_empty_mention(self, event: AstrMessageEvent):
        """Idiom chain game implementation"""
        try:
            yield event.plain_result("Please send an idiom~")

            @session_waiter(timeout=60, record_history_chains=False)
            async def empty_mention_waiter(controller: SessionController, event: AstrMessageEvent):
                idiom = event.message_str

                if idiom == "exit":
                    await event.send(event.plain_result("Exited the idiom chain game~"))
                    controller.stop()
                    return

                if len(idiom) != 4:
                    await event.send(event.plain_result("The idiom must be four characters~"))
                    return

                message_result = event.make_result()
                message_result.chain = [Comp.Plain("Foresight")]
                await event.send(message_result)

                controller.keep(timeout=60, reset_timeout=True)

            try:
                await empty_mention_waiter(event, session_filter=self.session_filter())
            except TimeoutError as _:
                yield event.plain_result("You timed out!")
            except Exception as e:
                yield event.plain_result("An error occurred, please contact the administrator: " + str(e))
            finally:
                event.stop_event()
        except Exception as e:
            logger.error("handle_empty_mention error: " + str(e))

    def session_filter(self):
        return None  # the default filter: per sender within the chat


class CustomFilter(SessionFilter):
    def filter(self, event: AstrMessageEvent) -> str:
        return event.get_group_id() if event.get_group_id() else event.unified_msg_origin


class GroupIdiomChain(IdiomChain):
    def session_filter(self):
        return CustomFilter()


quiz_spec = Spec(
    name="real-astrbot-quiz",
    initial="asking",
    states=[
        State("asking",
              enter=lambda ctx: ctx.reply(f"{ctx.event.sender}: what is 6 x 7?"),
              on=[On("message", "done", guard=lambda ctx: ctx.text.strip() == "42",
                     action=lambda ctx: ctx.reply("Right!")),
                  On("message", KEEP, action=lambda ctx: ctx.reply("No, try again."))],
              timeout=Timeout(30, STOP, action=lambda ctx: ctx.reply("Time's up: it was 42."))),
        State("done", final=True),
    ],
)


class QuizPlugin(Star):
    quiz = spec_command("quiz", quiz_spec)
