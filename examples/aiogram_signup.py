"""A complete aiogram 3 bot: /signup runs examples/signup.py on convo_fsm.

    pip install 'convo-fsm[aiogram]' && BOT_TOKEN=... python examples/aiogram_signup.py
"""

import asyncio
import os

from aiogram import Bot, Dispatcher
from aiogram.types import Message
from signup import signup

from convo_fsm.adapters.aiogram import Conversations
from convo_fsm.storage import SqliteStore, WallClock


def build(conv: Conversations) -> Dispatcher:
    dp = Dispatcher()
    conv.command("signup", signup)  # /signup starts it: one session per user in a chat
    conv.setup(dp)  # sessions see every message first; stored ones come back at startup

    @dp.message()
    async def echo(message: Message) -> None:  # gets every message no session takes
        await message.answer(f"You said: {message.text}")

    return dp


async def main() -> None:
    bot = Bot(os.environ["BOT_TOKEN"])
    conv = Conversations(bot, store=SqliteStore("signup.db"), clock=WallClock())
    await build(conv).start_polling(bot)


if __name__ == "__main__":
    asyncio.run(main())
