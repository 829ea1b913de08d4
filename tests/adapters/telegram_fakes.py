"""Offline stand-ins for Telegram that the real frameworks talk to: an aiogram `BaseSession`
and a PTB `BaseRequest` that record each Bot API call and answer it as Telegram would (the
framework parses the answer as usual). Used by the adapters' and the examples' tests."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncGenerator
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import GetMe, SendMessage, TelegramMethod
from telegram.request import BaseRequest, RequestData


class RecordingSession(BaseSession):
    """Answers every request locally, as Telegram would, and keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self._ids = itertools.count(10_000)

    async def make_request(self, bot: Bot, method: TelegramMethod[Any],
                           timeout: int | None = None) -> Any:
        self.requests.append(method)
        result: Any = True
        if isinstance(method, SendMessage):
            chat = int(method.chat_id)
            result = {"message_id": next(self._ids), "date": 0, "text": method.text,
                      "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"}}
        elif isinstance(method, GetMe):
            result = {"id": 1, "is_bot": True, "first_name": "Quiz", "username": "quiz_bot"}
        content = json.dumps({"ok": True, "result": result})
        return self.check_response(bot=bot, method=method, status_code=200,
                                   content=content).result

    async def close(self) -> None:
        pass

    async def stream_content(self, url: str, headers: dict[str, Any] | None = None,
                             timeout: int = 30, chunk_size: int = 65536,
                             raise_for_status: bool = True) -> AsyncGenerator[bytes, None]:
        yield b""

    def sent(self) -> list[tuple[int, str]]:
        """(chat id, text) of the messages sent since the last call."""
        out = [(int(m.chat_id), str(m.text)) for m in self.requests if isinstance(m, SendMessage)]
        self.requests.clear()
        return out



class LocalRequest(BaseRequest):
    """Answers every Bot API call locally, as Telegram would, and keeps it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(10_000)

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout: Any = None, write_timeout: Any = None,
                         connect_timeout: Any = None, pool_timeout: Any = None
                         ) -> tuple[int, bytes]:
        api = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data is not None else {}
        self.calls.append((api, params))
        result: Any = True
        if api == "getMe":
            result = {"id": 1, "is_bot": True, "first_name": "Quiz", "username": "quiz_bot"}
        elif api == "sendMessage":
            chat = int(params["chat_id"])
            result = {"message_id": next(self._ids), "date": 0, "text": params["text"],
                      "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"}}
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def sent(self) -> list[tuple[int, str]]:
        """(chat id, text) of the messages sent since the last call."""
        out = [(int(p["chat_id"]), str(p["text"])) for api, p in self.calls
               if api == "sendMessage"]
        self.calls.clear()
        return out


def update_data(n: int, user: int, text: str, chat: int | None = None) -> dict[str, Any]:
    """A Bot API update with a text message from `user` (in a private chat, or group `chat`);
    a command gets its `bot_command` entity, as Telegram sends it."""
    chat_obj = ({"id": user, "type": "private"} if chat is None
                else {"id": chat, "type": "supergroup", "title": "g"})
    message: dict[str, Any] = {"message_id": n, "date": 0, "chat": chat_obj, "text": text,
                               "from": {"id": user, "is_bot": False, "first_name": f"u{user}"}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0,
                                "length": len(text.split()[0])}]
    return {"update_id": n, "message": message}
