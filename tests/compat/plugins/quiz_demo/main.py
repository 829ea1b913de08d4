"""A quiz in the style of published AstrBot plugins: typed command parameters, image
results, a config from _conf_schema.json, StarTools.get_data_dir. Written against AstrBot's
own API; convo_fsm's tests load it unmodified (PluginHost) and in real AstrBot."""

import json

import astrbot.api.message_components as Comp
from astrbot.api import AstrBotConfig, logger
from astrbot.api.event import AstrMessageEvent, filter
from astrbot.api.star import Context, Star, StarTools, register
from astrbot.core.utils.session_waiter import SessionController, session_waiter

QUESTIONS = {
    "capitals": [("France", "paris"), ("Japan", "tokyo"), ("Peru", "lima")],
    "math": [("2+2", "4"), ("3*3", "9"), ("10-7", "3")],
}


@register("quiz_demo", "convo_fsm tests", "A quiz with pictures", "1.0.0")
class QuizDemo(Star):
    def __init__(self, context: Context, config: AstrBotConfig):
        super().__init__(context)
        self.config = config
        self.timeout = config.get("timeout", 30)

    def picture(self, topic: str, n: int) -> Comp.Image:
        return Comp.Image.fromURL(f"{self.config.image_base}/{topic}/{n}.png")

    @filter.command("quiz")
    async def quiz(self, event: AstrMessageEvent, topic: str, rounds: int = 2):
        """Start a quiz: /quiz <topic> [rounds]"""
        if topic not in QUESTIONS:
            yield event.plain_result(f"No topic {topic}; try: {', '.join(sorted(QUESTIONS))}")
            return
        items = QUESTIONS[topic][:rounds]
        state = {"i": 0, "score": 0}
        yield event.chain_result([Comp.Plain(f"Q1: {items[0][0]}?"), self.picture(topic, 1)])

        @session_waiter(timeout=self.timeout)
        async def answer(controller: SessionController, ev: AstrMessageEvent):
            _, right = items[state["i"]]
            if ev.message_str.strip().lower() == right:
                state["score"] += 1
                verdict = "Right!"
            else:
                verdict = f"No, it was {right}."
            state["i"] += 1
            if state["i"] >= len(items):
                path = StarTools.get_data_dir() / "scores.json"
                path.write_text(json.dumps({ev.get_sender_id(): state["score"]}))
                await ev.send(ev.plain_result(f"{verdict} Score: {state['score']}/{len(items)}"))
                controller.stop()
                return
            n = state["i"] + 1
            await ev.send(ev.chain_result([Comp.Plain(f"{verdict} Q{n}: {items[n - 1][0]}?"),
                                           self.picture(topic, n)]))
            controller.keep(self.timeout, reset_timeout=True)

        try:
            await answer(event)
        except TimeoutError:
            yield event.plain_result("Time's up!")
        except Exception as e:
            logger.error(f"quiz failed: {e}")
            yield event.plain_result(f"Error: {e}")
        finally:
            event.stop_event()
