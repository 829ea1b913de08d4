"""`astrbot.api.provider` on convo_fsm: `Provider`, `LLMResponse`, `ProviderRequest`.

`PluginHost(llm=...)` installs a `ScriptedProvider`: a test decides what the model says,
with a list of answers (taken in order) or a function of the request. With no provider,
`Context.get_using_provider()` returns a falsy stand-in whose calls raise `LLMUnavailable`
naming the call, and `Context.llm_generate` raises it too."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["LLMResponse", "LLMUnavailable", "NoProvider", "Provider", "ProviderRequest",
           "ScriptedProvider"]


class LLMResponse:
    def __init__(self, role: str = "assistant", completion_text: str = "",
                 **extra: Any) -> None:
        self.role = role
        self.completion_text = completion_text
        self.tools_call_args: list[Any] = []
        self.tools_call_name: list[str] = []
        for key, value in extra.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"LLMResponse(role={self.role!r}, completion_text={self.completion_text!r})"


class ProviderRequest:
    def __init__(self, prompt: str = "", session_id: str = "",
                 image_urls: list[str] | None = None, contexts: list[Any] | None = None,
                 system_prompt: str = "", **extra: Any) -> None:
        self.prompt = prompt
        self.session_id = session_id
        self.image_urls = list(image_urls or ())
        self.contexts = list(contexts or ())
        self.system_prompt = system_prompt
        for key, value in extra.items():
            setattr(self, key, value)


class LLMUnavailable(RuntimeError):
    """A plugin asked for an LLM and the host has none (`PluginHost(llm=...)`)."""


class Provider:
    """A chat model. Subclasses answer `text_chat`."""

    provider_id = "provider"

    def meta(self) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(id=self.provider_id, model="scripted", type="scripted")

    def get_model(self) -> str:
        return "scripted"

    async def text_chat(self, prompt: str | None = None, session_id: str | None = None,
                        image_urls: list[str] | None = None, func_tool: Any = None,
                        contexts: list[Any] | None = None, system_prompt: str | None = None,
                        **kwargs: Any) -> LLMResponse:
        raise NotImplementedError


Script = Iterable[str] | Callable[[ProviderRequest], Any]


class ScriptedProvider(Provider):
    """Answers from a script: a list of texts (in order; running out is an error) or a
    function `(ProviderRequest) -> str | LLMResponse` (may be async). `requests` keeps
    every request, for the test to assert on."""

    provider_id = "scripted"

    def __init__(self, script: Script) -> None:
        self._fn = script if callable(script) else None
        self._answers = None if callable(script) else list(script)
        self.requests: list[ProviderRequest] = []

    async def text_chat(self, prompt: str | None = None, session_id: str | None = None,
                        image_urls: list[str] | None = None, func_tool: Any = None,
                        contexts: list[Any] | None = None, system_prompt: str | None = None,
                        **kwargs: Any) -> LLMResponse:
        request = ProviderRequest(prompt or "", session_id or "", image_urls, contexts,
                                  system_prompt or "", **kwargs)
        self.requests.append(request)
        if self._fn is not None:
            answer = self._fn(request)
            if inspect.isawaitable(answer):
                answer = await answer
        else:
            assert self._answers is not None
            if not self._answers:
                raise LLMUnavailable(f"the scripted LLM has no answer left for {prompt!r} "
                                     f"(it answered {len(self.requests) - 1} requests)")
            answer = self._answers.pop(0)
        if isinstance(answer, LLMResponse):
            return answer
        return LLMResponse("assistant", str(answer))


class NoProvider:
    """What `get_using_provider()` gives when the host has no LLM: falsy, and any call
    raises `LLMUnavailable` naming it."""

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise LLMUnavailable(
                f"provider.{name}(): no LLM provider in this PluginHost; give one with "
                "PluginHost(llm=[...answers]) or PluginHost(llm=lambda request: ...)")

        return unavailable
