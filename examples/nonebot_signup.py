"""A complete NoneBot2 bot (OneBot v11): /signup runs examples/signup.py on convo_fsm.

    pip install 'convo-fsm[nonebot]' 'nonebot2[fastapi]'
    DRIVER=~fastapi ONEBOT_ACCESS_TOKEN=... python examples/nonebot_signup.py
    (then point your OneBot v11 implementation's reverse WebSocket at ws://127.0.0.1:8080/onebot/v11/ws)
"""

import nonebot
from nonebot.adapters.onebot.v11 import Adapter, MessageEvent
from signup import signup

from convo_fsm.adapters.nonebot import Conversations
from convo_fsm.storage import SqliteStore, WallClock


def build(conv: Conversations) -> None:
    conv.command("signup", signup)  # an on_command matcher
    echo = nonebot.on_message(priority=10)

    @echo.handle()
    async def _(event: MessageEvent) -> None:  # gets every message no session takes
        await echo.send(f"You said: {event.get_plaintext()}")


if __name__ == "__main__":
    nonebot.init()
    nonebot.get_driver().register_adapter(Adapter)
    conv = Conversations(store=SqliteStore("signup.db"), clock=WallClock())
    build(conv)
    nonebot.get_driver().on_startup(conv.restore)  # stored sessions come back, with timers
    nonebot.run()
