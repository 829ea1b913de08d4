"""A complete python-telegram-bot (21+) bot: /signup runs examples/signup.py on convo_fsm.

    pip install 'convo-fsm[ptb]' && BOT_TOKEN=... python examples/ptb_signup.py
"""

import os

from signup import signup
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from convo_fsm.adapters.ptb import Conversations
from convo_fsm.storage import SqliteStore, WallClock


def build(app: Application, **engine: object) -> Conversations:
    conv = Conversations(app, **engine)  # adds its routing handler in group -1
    app.add_handler(conv.command("signup", signup))  # a CommandHandler

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None  # (filters.TEXT: a message with text)
        await update.message.reply_text(f"You said: {update.message.text}")

    app.add_handler(MessageHandler(filters.TEXT, echo))  # what no session takes
    return conv


def main() -> None:
    async def restore(app: Application) -> None:
        await conv.restore()  # stored sessions come back, with their timers

    app = Application.builder().token(os.environ["BOT_TOKEN"]).post_init(restore).build()
    conv = build(app, store=SqliteStore("signup.db"), clock=WallClock())
    app.run_polling()


if __name__ == "__main__":
    main()
