"""`convo-fsm play` in a terminal: prompt_toolkit's prompt, driven through its pipe input and
read back as a user sees it (a pyte terminal emulator fed by a VT100 output). No sleeping:
each step waits, with a bound, for the screen to show what it should."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Iterator

import pyte
import pytest
from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.input.base import PipeInput
from prompt_toolkit.output.vt100 import Vt100_Output

from convo_fsm.cli.play import Table, wrap
from convo_fsm.cli.terminal import Terminal

COLUMNS, ROWS = 80, 30
UP, LEFT, CTRL_C, CTRL_D = "\x1b[A", "\x1b[D", "\x03", "\x04"


class Screen(io.StringIO):
    """A terminal screen: what prompt_toolkit writes goes through pyte's VT100 emulator."""

    def __init__(self) -> None:
        super().__init__()
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.Stream(self.screen)
        self.changed = asyncio.Event()

    def write(self, data: str) -> int:
        self.stream.feed(data)
        return len(data)

    def flush(self) -> None:
        self.changed.set()

    def isatty(self) -> bool:
        return True

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display if line.strip()]

    def cursor_line(self) -> str:
        return str(self.screen.display[self.screen.cursor.y]).rstrip()

    async def until(self, ok: Callable[[Screen], bool], what: str, timeout: float = 20) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not ok(self):
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            raise AssertionError(f"the screen never showed {what}:\n"
                                 + "\n".join(self.lines())) from None


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp:
        yield inp


@pytest.fixture
async def table(pipe: PipeInput) -> AsyncIterator[tuple[Table, Screen, asyncio.Task[int]]]:
    screen = Screen()
    output = Vt100_Output(screen, lambda: Size(rows=ROWS, columns=COLUMNS), term="xterm",
                          enable_cpr=False)
    terminal = Terminal(input=pipe, output=output)
    t = Table("guess-number", seed=3, speaker=("you", None), virtual=True, out=io.StringIO(),
              echo=False, store=None, terminal=terminal)
    task = asyncio.ensure_future(t.play(None))
    await screen.until(lambda s: s.cursor_line() == "you>", "the first prompt")
    yield t, screen, task
    if not task.done():
        pipe.send_text(CTRL_D)
        await asyncio.wait_for(task, 20)


def _index(lines: list[str], pred: Callable[[str], bool]) -> int:
    return next(i for i, line in enumerate(lines) if pred(line))


async def test_a_timer_message_while_typing_leaves_the_typed_line_intact(
        pipe: PipeInput, table: tuple[Table, Screen, asyncio.Task[int]]) -> None:
    t, screen, task = table
    assert "/start [LOW-HIGH] [ATTEMPTS]" in "\n".join(screen.lines())  # the banner
    pipe.send_text("/start 1-100 10\r")
    await screen.until(lambda s: any("I'm thinking of a number from 1 to 100" in line
                                     for line in s.lines()), "the game's opening")
    pipe.send_text("12")
    await screen.until(lambda s: s.cursor_line() == "you> 12", "the half-typed line")
    assert t.virtual is not None
    await t.virtual.advance(30)  # the reminder arrives while "12" is typed
    await screen.until(lambda s: any("Still there?" in line for line in s.lines())
                       and s.cursor_line() == "you> 12", "the reminder above the prompt")
    lines = screen.lines()
    reminder = _index(lines, lambda line: "Still there?" in line)
    assert lines[reminder].startswith("  [   30s] bot -> you: Still there?")
    assert "12" not in lines[reminder].partition("Still there?")[0]  # not glued to the input
    assert lines[-1] == "you> 12" and reminder < len(lines) - 1  # the prompt is redrawn below

    pipe.send_text("3\r")  # the game gets exactly what was typed: 123
    await screen.until(lambda s: any("123 is out of range" in line for line in s.lines()),
                       "the answer to 123")
    lines = screen.lines()
    said = _index(lines, lambda line: line == "you> 123")
    assert reminder < said < _index(lines, lambda line: "123 is out of range" in line)
    assert not task.done()


async def test_line_editing_history_and_ctrl_d(
        pipe: PipeInput, table: tuple[Table, Screen, asyncio.Task[int]]) -> None:
    _, screen, task = table
    pipe.send_text("/start 1-100 10\r")
    await screen.until(lambda s: any("from 1 to 100" in line for line in s.lines()), "start")
    pipe.send_text("45" + LEFT + "6\r")  # Left-arrow moves the cursor: the line is 465
    await screen.until(lambda s: any("465 is out of range" in line for line in s.lines()),
                       "the edited line sent")
    assert not any("\\x1b" in line or "^[" in line for line in screen.lines())
    pipe.send_text(UP)  # history: the previous line comes back, editable
    await screen.until(lambda s: s.cursor_line() == "you> 465", "the line from history")
    pipe.send_text(UP)
    await screen.until(lambda s: s.cursor_line() == "you> /start 1-100 10", "an older line")
    pipe.send_text("\x15")  # Ctrl-U clears it
    await screen.until(lambda s: s.cursor_line() == "you>", "an empty prompt")
    pipe.send_text(CTRL_D)
    assert await asyncio.wait_for(task, 20) == 0
    assert screen.lines()[-1] == "  (bye)"


async def test_ctrl_c_leaves_cleanly(pipe: PipeInput,
                                     table: tuple[Table, Screen, asyncio.Task[int]]) -> None:
    _, screen, task = table
    pipe.send_text("half a line" + CTRL_C)
    assert await asyncio.wait_for(task, 20) == 0
    assert screen.lines()[-1] == "  (bye)"


async def test_help_and_unknown_commands_before_a_game_starts(
        pipe: PipeInput, table: tuple[Table, Screen, asyncio.Task[int]]) -> None:
    _, screen, _ = table
    pipe.send_text("/help\r")
    await screen.until(lambda s: any("/start [LOW-HIGH] [ATTEMPTS] starts it" in line
                                     for line in s.lines()), "the help")
    pipe.send_text("/foo\r")
    await screen.until(lambda s: any("no game is running for you" in line
                                     for line in s.lines()), "an answer to /foo")


def test_long_replies_wrap_between_words_and_cjk_counts_double() -> None:
    text = "Answer with a four-character idiom that starts with its last character, not used"
    lines = wrap(text, 30, "  bot -> you: ", "    ")
    assert all(len(line) <= 30 for line in lines)
    assert " ".join(line.strip() for line in lines).replace("bot -> you: ", "") == text
    assert lines[0] == "  bot -> you: Answer with a"  # "four-character" did not fit: moved
    cjk = wrap("成语接龙! I start: 一心一意.", 18, "> ", "  ")  # a CJK character: 2 columns
    assert cjk == ["> 成语接龙! I", "  start: 一心一意."]
    long_cjk = wrap("一二三四五六七八九十", 10, "", "")  # no spaces: breaks between characters
    assert long_cjk == ["一二三四五", "六七八九十"]
