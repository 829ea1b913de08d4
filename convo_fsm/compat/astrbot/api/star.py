"""`astrbot.api.star` on convo_fsm: `Star` (a plugin's base class), `Context` (what the
host gives a plugin), `StarTools`, `register`.

Under `PluginHost`, `Context` sends through the host (`send_message`), hands out the
host's event queue (`get_event_queue().put_nowait(event)` runs the event through the
pipeline again, as AstrBot's queue does), its bot config (`get_config()`: `wake_prefix`,
`admins_id`, ...) and its scripted LLM (`get_using_provider`, `llm_generate`). What needs
a real AstrBot (databases, platform clients, web APIs, agents) raises `NotOffered`
naming the member.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from convo_fsm.compat.astrbot.api.provider import LLMResponse, LLMUnavailable, NoProvider
from convo_fsm.compat.astrbot.context import current_host
from convo_fsm.compat.astrbot.core.message.message_event_result import MessageChain

__all__ = ["Context", "NotOffered", "Star", "StarTools", "register"]

T = TypeVar("T")
logger = logging.getLogger("astrbot")


class NotOffered(NotImplementedError):
    """An AstrBot API that makes no sense without AstrBot (a platform client, the
    database, the dashboard): the message names it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not offered by convo_fsm.compat.astrbot (it needs a real "
                         "AstrBot); see README, 'AstrBot plugins', for what PluginHost offers")


def _host_of(obj: Any) -> Any:
    host = getattr(obj, "_host", None) or current_host()
    if host is None:
        raise RuntimeError("no PluginHost: this AstrBot API works under a PluginHost "
                           "(or in real AstrBot)")
    return host


class Context:
    """What a plugin gets from its host (see the module docstring)."""

    def __init__(self, host: Any = None) -> None:
        self._host = host

    # -- sending and the pipeline ------------------------------------------------------------
    async def send_message(self, session: Any, message_chain: MessageChain) -> bool:
        """Send `message_chain` to the chat `session` (a unified_msg_origin)."""
        if self._host is None:
            raise RuntimeError("this Context has no host to send through")
        return bool(await self._host.send_message(str(session), message_chain))

    def get_event_queue(self) -> Any:
        """The host's event queue: an event put there runs through the pipeline again."""
        return _host_of(self).event_queue

    def get_config(self, umo: str | None = None) -> Any:
        """The bot's configuration (`wake_prefix`, `admins_id`, `provider_settings`...)."""
        return _host_of(self).bot_config

    # -- LLM ----------------------------------------------------------------------------------
    def get_using_provider(self, umo: str | None = None) -> Any:
        provider = _host_of(self).llm
        return provider if provider is not None else NoProvider()

    async def get_using_provider_async(self, umo: str | None = None, *,
                                       locale: str = "zh-CN") -> Any:
        return self.get_using_provider(umo)

    def get_all_providers(self) -> list[Any]:
        provider = _host_of(self).llm
        return [] if provider is None else [provider]

    def get_provider_by_id(self, provider_id: str) -> Any:
        provider = _host_of(self).llm
        return provider if provider is not None and provider.provider_id == provider_id \
            else None

    async def get_current_chat_provider_id(self, umo: str) -> str:
        provider = _host_of(self).llm
        if provider is None:
            raise LLMUnavailable("context.get_current_chat_provider_id(): no LLM provider in "
                                 "this PluginHost (PluginHost(llm=...))")
        return str(provider.provider_id)

    async def llm_generate(self, *, chat_provider_id: str, prompt: str | None = None,
                           image_urls: list[str] | None = None, tools: Any = None,
                           system_prompt: str | None = None, contexts: list[Any] | None = None,
                           **kwargs: Any) -> LLMResponse:
        provider = _host_of(self).llm
        if provider is None:
            raise LLMUnavailable("context.llm_generate(): no LLM provider in this PluginHost; "
                                 "give one with PluginHost(llm=[...answers]) or "
                                 "PluginHost(llm=lambda request: ...)")
        return await provider.text_chat(prompt=prompt, image_urls=image_urls,  # type: ignore[no-any-return]
                                        contexts=contexts, system_prompt=system_prompt,
                                        chat_provider_id=chat_provider_id, **kwargs)

    # -- plugins ------------------------------------------------------------------------------
    def get_registered_star(self, star_name: str) -> Any:
        return next((m for m in _host_of(self).metadata if m.name == star_name), None)

    def get_all_stars(self) -> list[Any]:
        return list(_host_of(self).metadata)

    def register_task(self, task: Any, desc: str) -> None:
        _host_of(self).track(task)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotOffered(f"Context.{name}")


class Star:
    """Base class of a plugin: `context`, `initialize()`/`terminate()` (the host calls
    them), the plugin KV store (`put_kv_data`...; in memory) and `text_to_image` /
    `html_render` (which write a local file and return its path: no render service)."""

    def __init__(self, context: Context, config: dict[str, Any] | None = None) -> None:
        self.context = context
        self.logger = logging.getLogger("astrbot")

    async def initialize(self) -> None:
        """Called by the host after loading."""

    async def terminate(self) -> None:
        """Called by the host when it shuts down."""

    # -- KV store (AstrBot keeps it in its database; here, per host, in memory) --------------
    def _kv(self) -> dict[str, Any]:
        store: dict[str, Any] = _host_of(self.context).kv.setdefault(type(self).__module__, {})
        return store

    async def put_kv_data(self, key: str, value: Any) -> None:
        self._kv()[key] = value

    async def get_kv_data(self, key: str, default: Any = None) -> Any:
        return self._kv().get(key, default)

    async def delete_kv_data(self, key: str) -> None:
        self._kv().pop(key, None)

    # -- rendering ---------------------------------------------------------------------------
    async def text_to_image(self, text: str, return_url: bool = True,
                            template_name: str | None = None, umo: str | None = None) -> str:
        return _render(_host_of(self.context), {"text": text, "template": template_name})

    async def html_render(self, tmpl: str, data: dict[str, Any], return_url: bool = True,
                          options: dict[str, Any] | None = None, umo: str | None = None) -> str:
        return _render(_host_of(self.context), {"html": tmpl, "data": data})


def _render(host: Any, what: dict[str, Any]) -> str:
    """A stand-in for AstrBot's render service: the request as JSON in a file under the
    host's temp folder (tests can read it back); its path is the 'image'."""
    body = json.dumps(what, ensure_ascii=False, sort_keys=True, default=str)
    folder = Path(host.root_dir) / "data" / "temp"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"render_{hashlib.sha1(body.encode()).hexdigest()[:16]}.png"
    path.write_text(body, encoding="utf-8")
    return str(path)


class StarTools:
    """AstrBot's class-level plugin helpers, answering for the current host."""

    @classmethod
    def get_data_dir(cls, plugin_name: str | None = None) -> Path:
        """`<data>/plugin_data/<plugin name>`, created (the host's data folder)."""
        host = _host_of(None)
        name = plugin_name or host.plugin_name_for_caller()
        if not name:
            raise ValueError("Unable to resolve plugin name")
        path = Path(host.root_dir) / "data" / "plugin_data" / name
        path.mkdir(parents=True, exist_ok=True)
        return path.absolute()

    @classmethod
    async def send_message(cls, session: Any, message_chain: MessageChain) -> bool:
        return bool(await _host_of(None).send_message(str(session), message_chain))

    @classmethod
    def initialize(cls, context: Any) -> None:
        """AstrBot's core calls this; the host needs nothing."""


def register(name: str, author: str = "", desc: str = "", version: str = "",
             repo: str | None = None) -> Callable[[T], T]:
    """AstrBot's plugin metadata decorator: recorded on the class (the host names the
    plugin by it)."""

    def decorate(cls: T) -> T:
        setattr(cls, "__astrbot_plugin__", {  # noqa: B010 - a class attribute by name
            "name": name, "author": author, "desc": desc, "version": version, "repo": repo})
        return cls

    return decorate
