"""`convo-fsm play GAME`: play a game from `games` in the terminal.

Each line you type is a chat message from the current speaker (default `you`,
in a private chat). Lines the terminal itself understands:

    /start [OPTIONS]      start the game for the current speaker (options: see the game)
    /as NAME              speak as NAME in a private chat
    /as NAME@GROUP        speak as NAME in group GROUP
    /wait SECONDS         let time pass (--virtual: instantly; otherwise for real)
    /sessions             list the live sessions, their state and time left
    /diagram              the speaker's session as a Mermaid diagram, its state highlighted
    /quit                 leave (end of input too)
    # ...                 a comment (blank lines are skipped too)

Everything else, `/help`, `/hint` or `/exit` included, goes to the game. A game
starts only with `/start`: a message no session takes gets a short note.
The bot's replies are printed with who they are for (`you`, `bob@g1` for one
member of a group, `@g1` for the whole group).

Real time by default: timeouts fire while you think. `--virtual` runs on a
virtual clock that moves only with `/wait`, which makes a script's transcript
exact and instant. `--script FILE` (or a non-terminal stdin) plays a script
and prints the transcript; a malformed line stops it with exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from convo_fsm import (
    AsyncioClock,
    Clock,
    Engine,
    Message,
    Reply,
    SessionExists,
    StartError,
    VirtualClock,
)
from convo_fsm.storage import Store, StoreError, WallClock, open_store

__all__ = ["ScriptError", "register", "run"]

_NAME = re.compile(r"^[^\s@/#]{1,64}$")
DEFAULT_SPEAKER = "you"


class ScriptError(ValueError):
    """A line the terminal cannot read (a malformed `/as` or `/wait`)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "play", help="play a game in the terminal",
        description="Play a game from the `games` package as a terminal chat.",
        epilog="Lines: /start [OPTIONS], /as NAME[@GROUP], /wait SECONDS, /sessions, /diagram, "
               "/quit; "
               "anything else is a chat message from the current speaker.")
    parser.add_argument("game", nargs="?", help="the game to play (see --list)")
    parser.add_argument("--list", action="store_true", help="list the games and exit")
    parser.add_argument("--virtual", action="store_true",
                        help="virtual clock: time moves only with /wait SECONDS")
    parser.add_argument("--script", metavar="FILE",
                        help="play the lines of FILE ('-' for stdin) and print the transcript")
    parser.add_argument("--seed", type=int, help="seed for the bot's choices (reproducible games)")
    parser.add_argument("--as", dest="speaker", metavar="NAME[@GROUP]", default=DEFAULT_SPEAKER,
                        help=f"the first speaker (default {DEFAULT_SPEAKER!r})")
    parser.add_argument("--store", metavar="PATH|memory",
                        help="where sessions are kept: an SQLite file (a game survives quitting "
                             "and restarting) or 'memory'; default: "
                             f"{DEFAULT_STORE} when playing in a terminal, memory for a script")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import games  # the games are a separate top-level package: import only when playing

    out = sys.stdout
    if args.list:
        width = max(map(len, games.GAMES))
        for name in games.GAMES:
            print(f"{name:<{width}}  {games.DESCRIPTIONS[name]}", file=out)
        return 0
    if args.game is None:
        print("convo-fsm play: error: name a game (convo-fsm play --list)", file=sys.stderr)
        return 2
    try:
        games.load(args.game)
    except games.UnknownGame as exc:
        print(f"convo-fsm play: error: {exc}", file=sys.stderr)
        return 2
    try:
        speaker = parse_speaker(args.speaker)
    except ScriptError as exc:
        print(f"convo-fsm play: error: --as: {exc}", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)

    scripted = args.script is not None or not sys.stdin.isatty()
    if args.script is not None and args.script != "-":
        try:
            text = Path(args.script).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"convo-fsm play: error: cannot read script {args.script!r}: {exc}",
                  file=sys.stderr)
            return 2
        lines: Iterator[str] | None = iter(text.splitlines())
    elif scripted:
        try:
            lines = iter(sys.stdin.read().splitlines())
        except UnicodeDecodeError as exc:
            print(f"convo-fsm play: error: cannot read the script on stdin: {exc}",
                  file=sys.stderr)
            return 2
    else:
        lines = None
    try:
        store = open_store(args.store or ("memory" if scripted else _default_store()))
    except StoreError as exc:
        print(f"convo-fsm play: error: --store: {exc}", file=sys.stderr)
        return 2
    table = Table(args.game, seed=seed, speaker=speaker, virtual=args.virtual, out=out,
                  echo=scripted, store=store)
    try:
        return asyncio.run(table.play(lines))
    except KeyboardInterrupt:
        return 130


def parse_speaker(text: str) -> tuple[str, str | None]:
    """`NAME` or `NAME@GROUP` -> (name, group)."""
    name, at, group = text.strip().partition("@")
    if not _NAME.match(name) or (at and not _NAME.match(group)):
        raise ScriptError(f"expected NAME or NAME@GROUP (no spaces, '/', '#' or extra '@'), "
                          f"got {text.strip()!r}")
    return name, (group if at else None)


def who(key: str) -> str:
    """A session key, as people read it: `alice`, `bob@g1`, `@g1` (the whole group)."""
    parts = key.split(":")
    if len(parts) >= 3 and parts[1] == "user":
        return ":".join(parts[2:])
    if len(parts) == 3 and parts[1] == "group":
        return f"@{parts[2]}"
    if len(parts) == 4 and parts[1] == "group":
        return f"{parts[3]}@{parts[2]}"
    return key


class Table:
    """One terminal game table: an engine, a clock, the current speaker, a transcript."""

    def __init__(self, game: str, *, seed: int, speaker: tuple[str, str | None],
                 virtual: bool, out: TextIO, echo: bool, store: Store | None = None) -> None:
        import games

        self.game = game
        self.spec = games.load(game)
        self.seed = seed
        self.started = 0
        self.speaker = speaker
        self.virtual = VirtualClock() if virtual else None
        self.out = out
        self.echo = echo
        self.engine: Engine | None = None
        self.t0 = 0.0
        self.store = store

    # -- output ---------------------------------------------------------------------------
    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _stamp(self) -> str:
        if self.virtual is None or self.engine is None:
            return ""
        return f"[{self.engine.clock.now() - self.t0:>5g}s] "

    def _print_reply(self, reply: Reply) -> None:
        self.say(f"  {self._stamp()}bot -> {who(reply.to)}: {reply.text}")

    def note(self, text: str) -> None:
        self.say(f"  ({text})")

    @property
    def prompt(self) -> str:
        name, group = self.speaker
        return f"{name}@{group}> " if group else f"{name}> "

    # -- the loop -------------------------------------------------------------------------
    async def play(self, lines: Iterator[str] | None) -> int:
        clock: Clock = self.virtual if self.virtual is not None else (
            AsyncioClock() if self.store is None else WallClock())
        async with Engine(clock=clock, send=self._print_reply, store=self.store) as engine:
            self.engine = engine
            if self.store is not None:
                await self._restore(engine)
            self.t0 = clock.now()
            if lines is None:
                return await self._interactive()
            for number, line in enumerate(lines, 1):
                self.say(f"{self.prompt}{line}")
                try:
                    if not await self.line(line):
                        break
                except ScriptError as exc:
                    print(f"convo-fsm play: error: script line {number}: {exc}",
                          file=sys.stderr)
                    return 2
            return 0

    async def _interactive(self) -> int:
        import games

        self.say(f"{self.game}: {games.DESCRIPTIONS[self.game]}")
        self.say(f"Type /start to play, /help for the game's commands, /quit to leave "
                 f"(seed {self.seed}{', virtual clock' if self.virtual else ''}).")
        reader = _Reader(asyncio.get_running_loop())
        while True:
            line = await reader.read(self.prompt)
            if line is None:
                self.say("")
                return 0
            try:
                if not await self.line(line):
                    return 0
            except ScriptError as exc:
                self.note(f"error: {exc}")

    async def line(self, line: str) -> bool:
        """Handle one line; False when it asks to quit."""
        engine = self.engine
        assert engine is not None
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        command, _, rest = text.partition(" ")
        rest = rest.strip()
        if command == "/quit":
            return False
        if command == "/as":
            self.speaker = parse_speaker(rest)
            return True
        if command == "/wait":
            await self._wait(rest)
            return True
        if command == "/sessions":
            self._sessions()
            return True
        if command == "/diagram":
            self._diagram()
            return True
        name, group = self.speaker
        message = Message(line.rstrip("\r\n"), sender=name, group=group)
        if await engine.dispatch(message):
            return True
        if command == "/start":
            await self._start(message, rest)
        elif not self._has_session(message):
            self.note(f"no game is running for {self.prompt[:-2]}: /start to play {self.game}")
        return True

    async def _wait(self, rest: str) -> None:
        try:
            seconds = float(rest)
        except ValueError:
            raise ScriptError(f"/wait needs a number of seconds, got {rest!r}") from None
        if not 0 <= seconds <= 10**7:
            raise ScriptError(f"/wait needs 0 to 10000000 seconds, got {rest!r}")
        if self.virtual is not None:
            await self.virtual.advance(seconds)
        else:
            await asyncio.sleep(seconds)

    async def _start(self, message: Message, args: str) -> None:
        engine = self.engine
        assert engine is not None
        try:
            setup = self.spec.begin(message, args, seed=self.seed + self.started)
        except StartError as exc:
            self.note(str(exc))
            return
        key = engine.key(setup.kind, message)
        try:
            await engine.start(self.spec, key, data=setup.data, event=message)
        except SessionExists:
            self.note(f"a {self.game} game is already running for {who(key)}")
            return
        self.started += 1

    def _has_session(self, message: Message) -> bool:
        engine = self.engine
        assert engine is not None
        return any(engine.key(kind, message) in engine for kind in ("member", "group"))

    def _diagram(self) -> None:
        """Print the Mermaid diagram of the speaker's session, its state highlighted."""
        from convo_fsm.diagram import render_live

        engine = self.engine
        assert engine is not None
        name, group = self.speaker
        message = Message("/diagram", sender=name, group=group)
        for kind in ("member", "group"):
            key = engine.key(kind, message)
            if key in engine:
                self.say(render_live(engine, key, "mermaid"))
                return
        self.note(f"no game is running for {self.prompt[:-2]}: nothing to draw")

    def _sessions(self) -> None:
        engine = self.engine
        assert engine is not None
        infos = engine.sessions()
        if not infos:
            self.note("no live sessions")
        for s in infos:
            left = "" if s.seconds_left is None else f", {s.seconds_left:.0f} s left"
            self.note(f"{who(s.key)}: {s.spec} in {s.state!r}{left}")

    async def _restore(self, engine: Engine) -> None:
        """Bring back this game's stored sessions; their missed timeouts fire now."""
        assert self.store is not None
        stored = await self.store.list()
        if self.virtual is not None and stored:  # virtual time resumes where it stopped
            await self.virtual.advance(max(0.0, max(s.session.updated for s in stored)
                                           - self.virtual.now()))
        restored = await engine.restore([self.spec])
        if restored:
            self.note(f"restored {len(restored)} {self.game} session(s) from {self.store!r}")


DEFAULT_STORE = "~/.local/state/convo-fsm/play.db"


def _default_store() -> str:
    path = Path(DEFAULT_STORE).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {str(path.parent)!r} for the default store: {exc}; "
                         "pass --store PATH or --store memory") from exc
    return str(path)


class _Reader:
    """Reads the terminal in a daemon thread (with `input`'s line editing) while the loop runs
    timers. One line at a time, each with the prompt of the speaker at that moment; a daemon,
    so a pending `input` never keeps the process alive after /quit or Ctrl-C."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._wanted = threading.Event()
        self._prompt = ""
        threading.Thread(target=self._run, name="convo-fsm-play-stdin", daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                line: str | None = input(self._prompt)
            except (EOFError, OSError):
                line = None
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            if line is None:
                return

    async def read(self, prompt: str) -> str | None:
        """The next line, None at the end of input."""
        self._prompt = prompt
        self._wanted.set()
        return await self._lines.get()
