"""The interactive side of `convo-fsm play`: a prompt_toolkit prompt.

While the prompt waits for a line, the bot's messages (a timer's reminder, another
player's move) are printed *above* it and the prompt is redrawn with what was typed so
far, so a reply never lands in the middle of a half-typed line. The prompt has line
editing (arrows, Home/End, Ctrl-A/E/K/U/W), history (Up/Down, Ctrl-R) and ends cleanly
on Ctrl-D (end of input) and Ctrl-C.

Scripts and a stdin that is not a terminal never come here: they are plain lines.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.formatted_text import to_formatted_text
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.output import Output
from prompt_toolkit.renderer import print_formatted_text as render_text
from prompt_toolkit.styles import Style

__all__ = ["Terminal"]

_STYLE = Style([])


class Terminal:
    """One prompt with history; `print` writes above it while it waits.

    `input`/`output` default to the process's terminal; tests pass prompt_toolkit's pipe
    input and an output writing to a buffer."""

    def __init__(self, *, input: Input | None = None, output: Output | None = None) -> None:
        self.session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(), input=input, output=output)
        self._pending: list[asyncio.Future[Any]] = []

    @property
    def output(self) -> Output:
        return self.session.app.output

    def width(self) -> int:
        """The terminal's width in columns (80 when it cannot say)."""
        try:
            columns = self.output.get_size().columns
        except OSError:
            return 80
        return columns if columns > 0 else 80

    def print(self, line: str) -> None:
        """Print one line: above the prompt (redrawn with its text intact) while it waits."""
        output = self.output

        def render() -> None:
            render_text(output, to_formatted_text(line + "\n"), _STYLE)
            output.flush()

        if self.session.app.is_running:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(asyncio.ensure_future(run_in_terminal(render)))
        else:
            render()

    async def read(self, prompt: str) -> str | None:
        """The next line; None at Ctrl-D or Ctrl-C."""
        await self.flush()
        try:
            line: str | None = await self.session.prompt_async(prompt)
        except (EOFError, KeyboardInterrupt):
            line = None
        await self.flush()  # what was printed above the prompt comes before what follows
        return line

    async def flush(self) -> None:
        """Wait until every line printed above the prompt is out."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
