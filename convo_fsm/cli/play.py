"""`convo-fsm play TARGET`: play a game (or any spec) in the terminal.

Each line you type is a chat message from the current speaker (default `you`,
in a private chat). Lines the terminal itself understands:

    /start [OPTIONS]      start the game for the current speaker (options: /help)
    /as NAME              speak as NAME in a private chat
    /as NAME@GROUP        speak as NAME in group GROUP
    /wait SECONDS         let time pass (--virtual: instantly; otherwise for real)
    /sessions             list the live sessions, their state and time left
    /diagram [FILE]       the speaker's session: its state; FILE (.mmd, .dot, .svg) gets
                          its live diagram, the state highlighted
    /help                 (when no game is running for the speaker) these lines and the
                          game's start options; during a game, the game's own help
    /quit                 leave (end of input, Ctrl-D and Ctrl-C too)
    # ...                 a comment (blank lines are skipped too)

Everything else, `/hint` or `/exit` included, goes to the game. A game starts only
with `/start`; a line no session takes gets a short note saying so.
The bot's replies are printed with who they are for (`you`, `bob@g1` for one
member of a group, `@g1` for the whole group).

In a terminal the prompt is prompt_toolkit's (convo_fsm.cli.terminal): the bot's messages
print above it while you type, with line editing and history. Real time by default:
timeouts fire while you think. `--virtual` runs on a virtual clock that moves only with
`/wait`, which makes a script's transcript exact and instant. `--script FILE` (or a
non-terminal stdin) plays plain lines and prints the transcript; a malformed line stops it
with exit status 2. `--record FILE` writes what the engine did as a transcript that
`convo-fsm replay FILE TARGET` re-runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TextIO

from wcwidth import wcswidth

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
from convo_fsm.cli.targets import Target, TargetError, game_module, games_registry, resolve
from convo_fsm.engine import TraceRecord
from convo_fsm.spec import Spec
from convo_fsm.storage import Store, StoreError, WallClock, open_store

__all__ = ["ScriptError", "register", "run"]

_NAME = re.compile(r"^[^\s@/#]{1,64}$")
DEFAULT_SPEAKER = "you"


class ScriptError(ValueError):
    """A line the terminal cannot read (a malformed `/as` or `/wait`)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "play", help="play a game (or any spec) in the terminal",
        description="Play a game, or any spec, as a terminal chat: each line is a message "
                    "from the current speaker.",
        epilog="TARGET: a game name (--list), module:attribute naming a convo_fsm.Spec "
               "(imported from the current directory), or a spec file (.yaml, .toml, .json).\n"
               "lines: /start [OPTIONS], /as NAME[@GROUP], /wait SECONDS, /sessions, "
               "/diagram [FILE], /help, /quit; anything else is a chat message.\n\n"
               "examples:\n"
               "  convo-fsm play --list\n"
               "  convo-fsm play idiom-chain                       # type /start, then idioms\n"
               "  convo-fsm play number-bomb --virtual --as ann@g1  # time moves with /wait\n"
               "  convo-fsm play guess-number --virtual --seed 3 --script game.txt\n"
               "  convo-fsm play mymodule:SPEC --record game.jsonl  # then: convo-fsm replay "
               "game.jsonl mymodule:SPEC\n"
               "  convo-fsm play guess-number --store memory       # nothing kept on disk")
    parser.add_argument("game", nargs="?", metavar="TARGET",
                        help="a game (see --list), module:attribute or a spec file")
    parser.add_argument("--list", action="store_true", help="list the games and exit")
    parser.add_argument("--registry", metavar="MODULE:ATTR",
                        help="for a spec file: the mapping of names to the guards and actions "
                             "it names")
    parser.add_argument("--virtual", action="store_true",
                        help="virtual clock: time moves only with /wait SECONDS")
    parser.add_argument("--script", metavar="FILE",
                        help="play the lines of FILE ('-' for stdin) and print the transcript")
    parser.add_argument("--seed", type=int, help="seed for the bot's choices (reproducible games)")
    parser.add_argument("--as", dest="speaker", metavar="NAME[@GROUP]", default=DEFAULT_SPEAKER,
                        help=f"the first speaker (default {DEFAULT_SPEAKER!r})")
    parser.add_argument("--store", metavar="PATH|memory|redis://...",
                        help="where sessions are kept: an SQLite file (a game survives quitting "
                             "and restarting), redis://HOST:PORT/DB or 'memory'; default: "
                             f"{DEFAULT_STORE} when playing in a terminal, memory for a script")
    parser.add_argument("--record", metavar="FILE",
                        help="write the engine's transcript (JSON lines) to FILE, for "
                             "`convo-fsm replay FILE TARGET` (exact with --virtual; in real "
                             "time a timer fires a few ms late, which replay reports)")
    parser.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"convo-fsm play: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    if args.list:
        try:
            registry = games_registry()
        except TargetError as exc:
            return _error(str(exc))
        width = max(map(len, registry.GAMES))
        for name in registry.GAMES:
            print(f"{name:<{width}}  {registry.DESCRIPTIONS[name]}", file=out)
        return 0
    if args.game is None:
        return _error("name a game (convo-fsm play --list), module:attribute or a spec file")
    try:
        target = resolve(args.game, args.registry)
    except TargetError as exc:
        return _error(str(exc))
    try:
        speaker = parse_speaker(args.speaker)
    except ScriptError as exc:
        return _error(f"--as: {exc}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)

    scripted = args.script is not None or not sys.stdin.isatty()
    if args.script is not None and args.script != "-":
        try:
            text = Path(args.script).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return _error(f"cannot read script {args.script!r}: {exc}")
        lines: Iterator[str] | None = iter(text.splitlines())
    elif scripted:
        try:
            lines = iter(sys.stdin.read().splitlines())
        except UnicodeDecodeError as exc:
            return _error(f"cannot read the script on stdin: {exc}")
    else:
        lines = None
    # A game that needs more than the core (the idiom chain's dictionary) says so now, and
    # loads what it needs before the first prompt.
    if target.game is not None:
        try:
            _prepare(target.game, lambda text: print(f"  ({text})", file=sys.stderr, flush=True))
        except (RuntimeError, TargetError) as exc:
            return _error(str(exc))
    record: IO[str] | None = None
    if args.record is not None:
        try:
            record = open(args.record, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            return _error(f"--record: cannot write {args.record!r}: {exc.strerror or exc}")
    try:
        try:
            if args.store is not None and Path(args.store.removeprefix("sqlite://")).exists():
                from convo_fsm.cli.sessions import check_ours

                check_ours(args.store, default=False)  # never another application's file
            store = open_store(args.store or ("memory" if scripted else _default_store()))
        except (StoreError, ValueError) as exc:
            return _error(f"--store: {exc}")
        terminal = None
        if lines is None:
            from convo_fsm.cli.terminal import Terminal

            terminal = Terminal()
        table = Table(target, seed=seed, speaker=speaker, virtual=args.virtual, out=out,
                      echo=scripted, store=store, record=record, terminal=terminal)
        try:
            return asyncio.run(table.play(lines))
        except KeyboardInterrupt:
            return 130
        except StoreError as exc:  # an unreachable Redis, a locked or unreadable file
            return _error(f"store {args.store or DEFAULT_STORE}: {exc}")
    finally:
        if record is not None:
            record.close()


def _prepare(game: str, note: Callable[[str], None]) -> None:
    """Run the game module's `prepare(note)` if it has one: it checks what the game needs
    (RuntimeError naming the missing package) and loads it, noting what takes time."""
    prepare = getattr(game_module(game), "prepare", None)
    if callable(prepare):
        prepare(note)


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

    def __init__(self, target: Target | str, *, seed: int, speaker: tuple[str, str | None],
                 virtual: bool, out: TextIO, echo: bool, store: Store | None = None,
                 record: IO[str] | None = None, terminal: Any = None) -> None:
        if isinstance(target, str):
            target = resolve(target)
        self.target = target
        self.spec: Spec = target.spec
        self.game = target.game or self.spec.name
        self.seed = seed
        self.started = 0
        self.speaker = speaker
        self.virtual = VirtualClock() if virtual else None
        self.out = out
        self.echo = echo
        self.engine: Engine | None = None
        self.t0 = 0.0
        self.store = store
        self.record = record
        self.terminal = terminal  # a convo_fsm.cli.terminal.Terminal when interactive
        self.replies = 0

    # -- output ---------------------------------------------------------------------------
    def say(self, line: str) -> None:
        if self.terminal is not None:
            self.terminal.print(line)
        else:
            print(line, file=self.out, flush=True)

    def _stamp(self) -> str:
        if self.virtual is None or self.engine is None:
            return ""
        return f"[{self.engine.clock.now() - self.t0:>5g}s] "

    def _print_reply(self, reply: Reply) -> None:
        self.replies += 1
        head = f"  {self._stamp()}bot -> {who(reply.to)}: "
        if self.terminal is None:  # a transcript: one line per reply
            self.say(head + reply.text)
            return
        width = self.terminal.width()
        for line in wrap(reply.text, width, head, " " * 4):
            self.say(line)

    def _trace(self, record: TraceRecord) -> None:
        from convo_fsm.testing.transcript import encode

        assert self.record is not None
        self.record.write(json.dumps(encode(record), ensure_ascii=False) + "\n")
        self.record.flush()

    def note(self, text: str) -> None:
        self.say(f"  ({text})")

    @property
    def prompt(self) -> str:
        name, group = self.speaker
        return f"{name}@{group}> " if group else f"{name}> "

    @property
    def speaker_name(self) -> str:
        return self.prompt[:-2]

    # -- the loop -------------------------------------------------------------------------
    async def play(self, lines: Iterator[str] | None) -> int:
        clock: Clock = self.virtual if self.virtual is not None else (
            AsyncioClock() if self.store is None else WallClock())
        trace = self._trace if self.record is not None else None
        async with Engine(clock=clock, send=self._print_reply, store=self.store,
                          trace=trace) as engine:
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

    def _banner(self) -> None:
        description = ""
        if self.target.game is not None:
            description = games_registry().DESCRIPTIONS.get(self.target.game, "")
        self.say(f"{self.game}: {description}" if description else f"{self.game}")
        self.say(f"Type /start{self._usage()} to play, /help for help, /quit to leave "
                 f"(seed {self.seed}{', virtual clock' if self.virtual else ''}).")

    def _options(self) -> str:
        return self.spec.start.usage if self.spec.start is not None else ""

    def _usage(self) -> str:
        usage = self._options()
        return f" [{usage}]" if usage and not usage.startswith("[") else (
            f" {usage}" if usage else "")

    async def _interactive(self) -> int:
        assert self.terminal is not None
        self._banner()
        while True:
            line = await self.terminal.read(self.prompt)
            if line is None:  # Ctrl-D or Ctrl-C
                self.note("bye")
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
            self._diagram(rest)
            return True
        name, group = self.speaker
        message = Message(line.rstrip("\r\n"), sender=name, group=group)
        if await engine.dispatch(message):
            return True
        if command == "/start":
            await self._start(message, rest)
        elif not self._has_session(message):
            if command == "/help":
                self._help()
            else:
                self.note(f"no game is running for {self.speaker_name}: "
                          f"/start{self._usage()} to play {self.game}, /help for help")
        elif command.startswith("/"):
            self.note(f"{self.game} does not know {command} now: /help lists what it takes")
        else:
            self.note(f"{self.game} takes no message now: /help lists what it takes")
        return True

    def _help(self) -> None:
        usage = self._options()
        self.note(f"{self.game}: /start{self._usage()} starts it for {self.speaker_name}"
                  + (f" (options: {usage})" if usage else ""))
        for line in ("/as NAME or /as NAME@GROUP: speak as someone else (a group chat)",
                     "/wait SECONDS: let time pass; /sessions: the live sessions",
                     "/diagram [FILE]: your session's state (FILE: .mmd, .dot or .svg)",
                     "/quit (or Ctrl-D): leave; during a game /help is the game's help"):
            self.note(line)

    async def _wait(self, rest: str) -> None:
        try:
            seconds = float(rest)
        except ValueError:
            raise ScriptError(f"/wait needs a number of seconds, got {rest!r}") from None
        if not 0 <= seconds <= 10**7:
            raise ScriptError(f"/wait needs 0 to 10000000 seconds, got {rest!r}")
        before = self.replies
        if self.virtual is not None:
            await self.virtual.advance(seconds)
        else:
            await asyncio.sleep(seconds)
        if self.replies == before:
            self.note(f"{seconds:g} s passed; nothing happened")

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

    def _speaker_key(self) -> str | None:
        engine = self.engine
        assert engine is not None
        name, group = self.speaker
        message = Message("", sender=name, group=group)
        for kind in ("member", "group"):
            key = engine.key(kind, message)
            if key in engine:
                return key
        return None

    def _has_session(self, message: Message) -> bool:
        engine = self.engine
        assert engine is not None
        return any(engine.key(kind, message) in engine for kind in ("member", "group"))

    def _diagram(self, path: str) -> None:
        """The speaker's session in one line; with a FILE, its live diagram written there."""
        from convo_fsm.diagram import EXTENSIONS, DiagramError, render_live

        engine = self.engine
        assert engine is not None
        key = self._speaker_key()
        if key is None:
            self.note(f"no game is running for {self.speaker_name}: nothing to draw")
            return
        info = next(s for s in engine.sessions() if s.key == key)
        left = "" if info.seconds_left is None else f", {info.seconds_left:.0f} s left"
        if not path:
            self.note(f"{who(key)}: {info.spec} in {info.state!r}{left}; /diagram FILE "
                      "(.mmd, .dot, .svg) draws it")
            return
        formats = {suffix: fmt for fmt, suffix in EXTENSIONS.items()}
        fmt = formats.get(Path(path).suffix.lower())
        if fmt is None:
            raise ScriptError(f"/diagram FILE must end in {', '.join(sorted(formats))}, "
                              f"got {path!r}")
        try:
            text = render_live(engine, key, fmt)
            Path(path).write_text(text, encoding="utf-8")
        except (DiagramError, OSError) as exc:
            self.note(f"cannot draw {path}: {exc}")
            return
        self.note(f"wrote {path}: {info.spec} in {info.state!r}{left}")

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
        """Bring back this spec's stored sessions; their missed timeouts fire now."""
        assert self.store is not None
        stored = [s for s in await self.store.list() if s.session.spec == self.spec.name]
        if not stored:
            return
        if self.virtual is not None:  # virtual time resumes where it stopped
            await self.virtual.advance(max(0.0, max(s.session.updated for s in stored)
                                           - self.virtual.now()))
        # Said before the restore: a restored session's overdue timeout replies at once.
        self.note(f"restoring {len(stored)} {self.game} session(s) from "
                  f"{_where(self.store)}")
        await engine.restore([self.spec])


def _where(store: Store) -> str:
    path = getattr(store, "path", None)
    return str(path) if isinstance(path, str) else type(store).__name__


def wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """`text` in lines of at most `width` terminal columns (CJK characters count two),
    broken at spaces, never inside a word (a word wider than a line gets a line of its own,
    and CJK text without spaces breaks between characters)."""
    def cols(s: str) -> int:
        n = wcswidth(s)
        return len(s) if n < 0 else n

    lines: list[str] = []
    line, used = first, cols(first)
    fresh = True
    for word in text.split(" "):
        w = cols(word)
        if not fresh and used + 1 + w > width:
            lines.append(line)
            line, used, fresh = rest, cols(rest), True
        if not fresh:
            line, used = line + " ", used + 1
        if used + w > width and any(cols(c) == 2 for c in word):
            for char in word:  # CJK: a break between two characters is no break in a word
                c = cols(char)
                if used + c > width and not fresh:
                    lines.append(line)
                    line, used = rest, cols(rest)
                line, used, fresh = line + char, used + c, False
            continue
        line, used, fresh = line + word, used + w, False
    lines.append(line)
    return lines


DEFAULT_STORE = "~/.local/state/convo-fsm/play.db"


def _default_store() -> str:
    path = Path(DEFAULT_STORE).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {str(path.parent)!r} for the default store: {exc}; "
                         "pass --store PATH or --store memory") from exc
    return str(path)
