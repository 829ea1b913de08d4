"""Declaration: a conversation is a frozen, validated state table.

Everything that decides *where* a conversation goes lives in a `Spec`:
its states, the transitions out of each state by event name, the per-state
timeout (with its optional warning), the any-state transitions (help, exit,
cancel) and the classifier that turns raw events into event names.

A `Spec` is checked and compiled once, when it is built. The compiled table
answers one question per event, "which transitions may fire for this event in
this state?", with at most four dict lookups; sessions share it and never
copy it. Guards and actions are plain callables (sync or async) taking a
`convo_fsm.Context`; the spec only stores them.
"""

from __future__ import annotations

import enum
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs

if TYPE_CHECKING:
    from convo_fsm.context import Context

__all__ = [
    "ANY",
    "BACK",
    "BACK_KEY",
    "CALL_DEPTH_LIMIT",
    "KEEP",
    "MAX_SECONDS",
    "STOP",
    "Busy",
    "Call",
    "EventError",
    "On",
    "Opening",
    "Spec",
    "SpecError",
    "Start",
    "StartArgs",
    "StartError",
    "State",
    "Target",
    "Timeout",
    "When",
    "classify_text",
]


class _Marker(enum.Enum):
    KEEP = "keep"
    STOP = "stop"
    BACK = "back"

    def __repr__(self) -> str:
        return self.value.upper()


KEEP: Final = _Marker.KEEP
"""Target: stay in the current state (no exit/enter actions; the timeout restarts)."""
STOP: Final = _Marker.STOP
"""Target: end the session."""
BACK: Final = _Marker.BACK
"""Target: return to the previous state of this session, with the data as it was when that
state was entered (its enter action runs and its timeout restarts, as on a normal entry).
From the first state, `Spec.nothing_back` is answered and the session stays."""
BACK_KEY: Final = "__back__"
"""Where a spec that uses `BACK` keeps its entry snapshots: in the session's data (so every
store persists them), a list of `[state, data at entry]`, at most `Spec.back_limit`."""
ANY: Final = "*"
"""Event name matching every event the state does not name itself."""

Target: TypeAlias = str | _Marker
Action: TypeAlias = Callable[["Context"], Any]
Guard: TypeAlias = Callable[["Context"], Any]


class Busy(enum.Enum):
    """What to do with an event for a key whose previous event is still being handled."""

    QUEUE = "queue"  # wait in the key's inbox (bounded by Spec.queue_limit)
    DROP = "drop"  # answer Spec.busy_reply and drop it
    INTERRUPT = "interrupt"  # cancel the running action, then handle it


class SpecError(ValueError):
    """A spec is malformed. `spec`, `state` and `event` name the place at fault."""

    def __init__(
        self, message: str, *, spec: str = "?", state: str | None = None, event: str | None = None
    ) -> None:
        where = f"spec {spec!r}"
        if state is not None:
            where += f", state {state!r}"
        if event is not None:
            where += f", event {event!r}"
        super().__init__(f"{where}: {message}")
        self.spec = spec
        self.state = state
        self.event = event


class EventError(ValueError):
    """A raw event cannot be classified or keyed: it is not something a spec understands."""


def classify_text(event: object) -> str:
    """Default classifier: `/cmd args` -> `cmd`, any other text -> `message`.

    Accepts a `str` or any object with a `text` string attribute (such as
    `convo_fsm.Message`).
    """
    text = event if isinstance(event, str) else getattr(event, "text", None)
    if not isinstance(text, str):
        raise EventError(
            f"cannot classify {type(event).__name__} event {event!r}: "
            "expected a str or an object with a str 'text' attribute"
        )
    if len(text) > 1 and text[0] == "/" and not text[1].isspace():
        return text[1:].split(None, 1)[0].lower()
    return "message"


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


def _is_generator(fn: object) -> bool:
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects too
    return any(inspect.isgeneratorfunction(f) or inspect.isasyncgenfunction(f)
               for f in (fn, call) if f is not None)


MAX_SECONDS: Final = 100 * 366 * 24 * 3600.0
"""The longest timeout or warning lead a spec may declare (100 years): every deadline
`now + after` stays a finite, exactly comparable clock time."""


@attrs.frozen
class On:
    """One transition: on `event`, if `guard(ctx)` is true, run `action(ctx)` and go to `target`.

    `target` is a state name, `KEEP` (stay) or `STOP` (end the session).
    `reset_timeout` (for `KEEP`) says whether staying restarts the state's timeout.
    """

    event: str
    target: Target
    guard: Guard | None = None
    action: Action | None = None
    reset_timeout: bool = True
    guard_is_async: bool = attrs.field(init=False, default=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "guard_is_async", _is_async(self.guard))

    @property
    def guard_name(self) -> str | None:
        return None if self.guard is None else getattr(self.guard, "__name__", repr(self.guard))


@attrs.frozen
class When:
    """One guarded branch of a `Timeout`: if `guard(ctx)` is true when the timeout falls due,
    run `action(ctx)` and go to `target` (a state, `KEEP` or `STOP`)."""

    target: Target
    guard: Guard | None = None
    action: Action | None = None

    @property
    def guard_name(self) -> str | None:
        return None if self.guard is None else getattr(self.guard, "__name__", repr(self.guard))


def _as_whens(value: Iterable[When]) -> tuple[When, ...]:
    return tuple(value)


@attrs.frozen
class Timeout:
    """A state's timeout: after `after` seconds in the state, run `action` and go to `target`.

    With `when`, the timeout has several targets chosen by guards, like transitions: the
    first `When` whose guard passes wins, and `target`/`action` are the guard-less last
    branch, taken when none does. Timeout guards are sync (the timer chooses at once); one
    that raises ends the session as an action that raises does.
    `branches` is every branch in the order tried (the last one `When(target, None, action)`).

    With `warn_before`, `warn(ctx)` runs once, `warn_before` seconds before the deadline.
    """

    after: float
    target: Target = STOP
    action: Action | None = None
    warn_before: float | None = None
    warn: Action | None = None
    when: tuple[When, ...] = attrs.field(default=(), converter=_as_whens)
    branches: tuple[When, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "branches", (*self.when, When(self.target, None, self.action)))


CALL_DEPTH_LIMIT: Final = 8
"""How deep sub-conversations may nest (a spec calling a spec calling ...)."""


def _as_dict(value: Mapping[str, Target]) -> dict[str, Target]:
    return dict(value)


def _as_strs(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Call:
    """A sub-conversation: a state with `call=Call(child, on_end=...)` runs `child` while the
    session is in it.

    Entering the state starts the child (for the same key, its data a copy of
    `data[data_key]` if there is one); events go to the innermost running child first (each
    level names them with its own classifier), and a level that has no transition for an
    event lets the level above try (the child's own any-state handlers win over the
    parent's); a transition of an outer level that leaves its state ends the children below
    it. When the child ends, its ending picks the parent's transition: `on_end` maps the
    child's final state names, "stop" and "timeout" (and "*" for any other) to a parent
    state or `STOP`; an ending it does not map ends the parent the same way. The child's
    data goes into the parent's `data[data_key]` (or, without `data_key`, is merged into
    it). `timeout`: the calling state's own timeout is "paused" while the child runs (the
    default), or keeps "running" (when it fires, the child is ended and the parent's
    timeout applies). `unwind`: event names (in the parent's classifier) that go straight to
    the calling state, ending the whole stack below it (say, a `cancel` handled there).
    A child's guards must be sync (the step chooses inside the stack).
    """

    spec: Spec
    on_end: dict[str, Target] = attrs.field(converter=_as_dict)
    data_key: str | None = None
    timeout: str = "paused"
    unwind: tuple[str, ...] = attrs.field(default=(), converter=_as_strs)


def _as_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    # A named converter: with `converter=tuple` mypy cannot type State(on=[...]).
    return tuple(value)


@attrs.frozen
class State:
    """A state: its transitions by event, optional timeout, on-enter/on-exit actions.

    A `final` state ends the session once its `enter` action has run.
    """

    name: str
    on: tuple[On, ...] = attrs.field(default=(), converter=_as_tuple)
    timeout: Timeout | None = None
    enter: Action | None = None
    exit: Action | None = None
    final: bool = False
    call: Call | None = None


Table: TypeAlias = Mapping[str, tuple[On, ...]]

DELEGATE: Final = On(ANY, KEEP)
"""The one candidate of every event in a calling state's compiled table (`Spec.tables`):
the step finds the transition inside the sub-conversation (`Spec.own_tables` has the
state's own)."""
DELEGATE_ALL: Final = (DELEGATE,)


# -- starting ----------------------------------------------------------------------------------
KINDS: Final = ("member", "group")
"""Session kinds a `Start` may name: the engine's default filters (`convo_fsm.DEFAULT_FILTERS`)."""


class StartError(ValueError):
    """A spec cannot be started with these arguments. The message names the spec, what is
    wrong and how it is started (`usage`)."""

    def __init__(self, spec: str, problem: str, usage: str = "") -> None:
        how = f" (arguments: {usage})" if usage else ""
        super().__init__(f"Cannot start {spec}: {problem}{how}")
        self.spec, self.problem, self.usage = spec, problem, usage


@attrs.frozen
class StartArgs:
    """What a start parser sees: the start event, the words after the command, a seed."""

    event: Any
    text: str
    seed: int = 0

    @property
    def words(self) -> list[str]:
        return self.text.split()

    @property
    def sender(self) -> str | None:
        sender = getattr(self.event, "sender", None)
        return sender if isinstance(sender, str) and sender else None

    @property
    def group(self) -> str | None:
        group = getattr(self.event, "group", None)
        return group if isinstance(group, str) and group else None


@attrs.frozen
class Opening:
    """What starting a spec gives: the session's first `data` and the `kind` that keys it."""

    data: dict[str, Any]
    kind: str


StartParser: TypeAlias = Callable[[StartArgs], Mapping[str, Any]]
KindChooser: TypeAlias = Callable[[StartArgs], str]


@attrs.frozen
class Start:
    """How a spec starts (`Spec(start=Start(...))`).

    `parse(args)` turns the start command's arguments into the session's first data (a
    JSON-serialisable mapping); it raises `ValueError` saying what is wrong, which becomes a
    `StartError` with `usage`. Without `parse` the spec takes no arguments and starts with
    empty data. `kind` is how sessions are keyed: "member" (one per player) or "group" (one
    per chat), or a function of the arguments choosing one of them. `group_only` refuses a
    start outside a group.
    """

    parse: StartParser | None = None
    kind: str | KindChooser = "member"
    usage: str = ""
    group_only: bool = False


def _check_start(start: object, fail: Callable[..., SpecError]) -> None:
    if not isinstance(start, Start):
        raise fail(f"start must be a Start, got {start!r}", event="start")
    if start.parse is not None and not callable(start.parse):
        raise fail(f"start parse must be callable, got {start.parse!r}", event="start")
    if not callable(start.kind) and start.kind not in KINDS:
        raise fail(f"start kind must be one of {', '.join(KINDS)} or a function choosing one, "
                   f"got {start.kind!r}", event="start")
    if not isinstance(start.usage, str):
        raise fail(f"start usage must be a str, got {start.usage!r}", event="start")


def start_args_of(event: Any) -> str:
    """The arguments of a start command: `/start 1-1000 10` -> `1-1000 10` (text that is not
    a `/command` has none)."""
    text = event if isinstance(event, str) else getattr(event, "text", "")
    if not isinstance(text, str):
        return ""
    text = text.strip()
    if not text.startswith("/"):
        return ""
    return text.partition(" ")[2].strip()


@attrs.frozen(eq=False)
class Spec:
    """A validated conversation: build it once at import time and share it.

    Raises `SpecError` naming the state and event at fault when the table is
    malformed. `lookup(state, event_name)` is the compiled per-event lookup.
    """

    name: str
    initial: str
    states: tuple[State, ...] = attrs.field(converter=_as_tuple)
    any_state: tuple[On, ...] = attrs.field(default=(), converter=_as_tuple)
    classify: Callable[[Any], str] = classify_text
    busy: Busy = Busy.QUEUE
    queue_limit: int = 32
    busy_reply: str = "Still working on your last message, one moment."
    history_limit: int = 8
    start: Start | None = None
    back_limit: int = 8
    nothing_back: str = "There is nothing to go back to."
    by_name: Mapping[str, State] = attrs.field(init=False, repr=False)
    tables: Mapping[str, Table] = attrs.field(init=False, repr=False)
    uses_back: bool = attrs.field(init=False, repr=False, default=False)
    calls: bool = attrs.field(init=False, repr=False, default=False)
    own_tables: Mapping[str, Table] = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        by_name, tables = _validate(self)
        object.__setattr__(self, "by_name", by_name)
        object.__setattr__(self, "tables", tables)
        object.__setattr__(self, "own_tables", tables)
        calling = [st.name for st in self.states if st.call is not None]
        if calling:  # the step chooses inside a running sub-conversation: hand it every event
            delegated = dict(tables)
            for st_name in calling:
                delegated[st_name] = {n: DELEGATE_ALL for n in (*self.events, ANY)}
            object.__setattr__(self, "tables", delegated)
            object.__setattr__(self, "calls", True)
        object.__setattr__(self, "uses_back", any(
            t.target is BACK for ts in (self.any_state, *(st.on for st in self.states))
            for t in ts))

    @property
    def events(self) -> frozenset[str]:
        """Every event name the spec mentions (its alphabet), without the wildcard."""
        names = {t.event for s in self.states for t in s.on} | {t.event for t in self.any_state}
        names.discard(ANY)
        return frozenset(names)

    @property
    def final_states(self) -> frozenset[str]:
        return frozenset(s.name for s in self.states if s.final)

    def lookup(self, state: str, event: str) -> tuple[On, ...]:
        """Candidate transitions for `event` in `state`, in priority order (first guard wins)."""
        table = self.tables[state]
        found = table.get(event)
        return found if found is not None else table[ANY]

    def to_data(self, registry: Mapping[str, Callable[..., Any]] | None = None
                ) -> dict[str, Any]:
        """This spec as spec-file data (`convo_fsm.spec_file`): write it with `json`/`yaml`,
        read it back with `load_spec`. Guards and actions are named from `registry`."""
        from convo_fsm.spec_file import spec_to_data  # the file format builds on this module

        return spec_to_data(self, registry)

    def begin(self, event: Any = None, args: str | None = None, *, seed: int = 0) -> Opening:
        """Start data and kind for a session started by `event` with `args` (default: the
        words after the event's `/command`). A spec that declares no `start` takes any
        arguments and starts with empty data, keyed per member. Raises `StartError`."""
        start = self.start
        if args is None:
            args = start_args_of(event)
        if start is None:
            return Opening({}, "member")
        a = StartArgs(event, args, seed)
        if start.group_only and a.group is None:
            raise StartError(self.name, "it is a group game: start it in a group", start.usage)
        if start.parse is None:
            if a.words:
                raise StartError(self.name, f"it takes no arguments, got {args!r}", start.usage)
            data: dict[str, Any] = {}
        else:
            try:
                parsed = start.parse(a)
            except ValueError as exc:
                raise StartError(self.name, str(exc), start.usage) from None
            if not isinstance(parsed, Mapping):
                raise TypeError(f"spec {self.name!r}: start parse returned "
                                f"{type(parsed).__name__}, not a mapping")
            data = dict(parsed)
            try:
                json.dumps(data)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"spec {self.name!r}: start data is not JSON-serialisable: "
                                f"{exc}") from None
        kind = start.kind(a) if callable(start.kind) else start.kind
        if kind not in KINDS:
            raise TypeError(f"spec {self.name!r}: start kind chose {kind!r}, not one of "
                            f"{', '.join(KINDS)}")
        return Opening(data, kind)

    def shadowed(self, t: On) -> tuple[str, ...]:
        """The states where the any-state transition `t` does not apply because they name
        its event themselves (theirs wins): read from the compiled table."""
        if t.event == ANY:
            return ()
        return tuple(s.name for s in self.states if not s.final
                     and not any(o is t for o in self.own_lookup(s.name, t.event)))

    def own_lookup(self, state: str, event: str) -> tuple[On, ...]:
        """`lookup` in the table as declared (a calling state's `lookup` hands every event to
        the step, which looks inside its sub-conversation first)."""
        table = self.own_tables[state]
        found = table.get(event)
        return found if found is not None else table[ANY]

    def __repr__(self) -> str:
        return f"<Spec {self.name!r}: {len(self.states)} states, initial {self.initial!r}>"


def _compile(spec: Spec, by_name: Mapping[str, State]) -> Mapping[str, Table]:
    """Per state, event name -> candidates, in this order: the state's own
    transitions for the event, the any-state ones for it (unless the state
    names the event itself), the state's wildcard, the any-state wildcard."""
    any_on: dict[str, list[On]] = {}
    for t in spec.any_state:
        any_on.setdefault(t.event, []).append(t)
    alphabet = spec.events
    tables: dict[str, Table] = {}
    for state in by_name.values():
        own: dict[str, list[On]] = {}
        for t in state.on:
            own.setdefault(t.event, []).append(t)
        wildcard = tuple(own.get(ANY, ())) + tuple(any_on.get(ANY, ()))
        table: dict[str, tuple[On, ...]] = {ANY: wildcard}
        for name in alphabet:
            named = own.get(name) or any_on.get(name, [])
            table[name] = tuple(named) + wildcard
        tables[state.name] = table
    return tables


def _validate(spec: Spec) -> tuple[dict[str, State], Mapping[str, Table]]:
    name = spec.name
    if not isinstance(name, str) or not name:
        raise SpecError(f"name must be a non-empty str, got {name!r}")

    def fail(message: str, state: str | None = None, event: str | None = None) -> SpecError:
        return SpecError(message, spec=name, state=state, event=event)

    if not callable(spec.classify):
        raise fail(f"classify must be callable, got {spec.classify!r}")
    if not isinstance(spec.busy, Busy):
        raise fail(f"busy must be a Busy policy, got {spec.busy!r}")
    for field, value in (("queue_limit", spec.queue_limit), ("history_limit", spec.history_limit),
                         ("back_limit", spec.back_limit)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail(f"{field} must be an int >= 1, got {value!r}")
    if not isinstance(spec.nothing_back, str):
        raise fail(f"nothing_back must be a str, got {spec.nothing_back!r}")
    if not spec.states:
        raise fail("a spec needs at least one state")
    if spec.start is not None:
        _check_start(spec.start, fail)

    by_name: dict[str, State] = {}
    for state in spec.states:
        if not isinstance(state, State):
            raise fail(f"states must be State objects, got {state!r}")
        if not isinstance(state.name, str) or not state.name or state.name == ANY:
            raise fail(f"state name must be a non-empty str other than {ANY!r}, got {state.name!r}")
        if state.name in by_name:
            raise fail("duplicate state", state=state.name)
        by_name[state.name] = state
    if not isinstance(spec.initial, str) or spec.initial not in by_name:
        raise fail(f"initial state {spec.initial!r} is not a declared state")

    def check_target(target: object, state: str | None, event: str | None) -> None:
        if isinstance(target, _Marker):
            return
        if not isinstance(target, str):
            raise fail(f"target must be a state name, KEEP, STOP or BACK, got {target!r}",
                       state, event)
        if target not in by_name:
            raise fail(f"target {target!r} is not a declared state", state, event)

    def check_callable(what: str, fn: object, state: str | None, event: str | None) -> None:
        if fn is None:
            return
        if not callable(fn):
            raise fail(f"{what} must be callable, got {fn!r}", state, event)
        if _is_generator(fn):
            raise fail(f"{what} {getattr(fn, '__qualname__', fn)!r} is a generator function: "
                       "calling it runs nothing and its result is always true; write a plain "
                       "(or async) function that returns", state, event)

    def check_on(t: object, state: str | None) -> None:
        if not isinstance(t, On):
            raise fail(f"transitions must be On objects, got {t!r}", state)
        if not isinstance(t.event, str) or not t.event:
            raise fail(f"event name must be a non-empty str, got {t.event!r}", state)
        check_target(t.target, state, t.event)
        check_callable("guard", t.guard, state, t.event)
        check_callable("action", t.action, state, t.event)

    for t in spec.any_state:
        check_on(t, None)
    for state in by_name.values():
        for t in state.on:
            check_on(t, state.name)
        check_callable("enter", state.enter, state.name, None)
        check_callable("exit", state.exit, state.name, None)
        if state.call is not None:
            if state.final:
                raise fail("a final state cannot call a sub-conversation", state.name, "call")
            _check_call(state.call, state.name, fail, by_name)
        if state.final:
            if state.on or state.timeout is not None:
                raise fail("a final state ends the session: it cannot have transitions or a "
                           "timeout", state.name)
            continue
        timeout = state.timeout
        if timeout is not None:
            _check_timeout(timeout, state.name, fail)
            check_target(timeout.target, state.name, "timeout")
            check_callable("timeout action", timeout.action, state.name, "timeout")
            check_callable("warn", timeout.warn, state.name, "timeout")
            _check_branches(timeout, state.name, fail, check_target, check_callable)
            if any(b.target is BACK for b in timeout.branches):
                raise fail("a timeout cannot go BACK (a timeout goes to a declared state, "
                           "KEEP or STOP)", state.name, "timeout")

    # Graph checks: every non-final state has a way out; every state is reachable. The
    # targets of a state are read from the compiled table: one rule of precedence.
    tables = _compile(spec, by_name)

    def targets(state: State) -> list[Target]:
        out: list[Target] = [t.target for ts in tables[state.name].values() for t in ts]
        if state.timeout is not None:
            out += [b.target for b in state.timeout.branches]
        if state.call is not None:
            out += list(state.call.on_end.values())
        return out

    for state in by_name.values():
        if state.final:
            continue
        exits = [x for x in targets(state)
                 if x is STOP or x is BACK or (isinstance(x, str) and x != state.name)]
        if not exits and state.timeout is None:
            raise fail("non-final state has no exit: no transition out and no timeout",
                       state.name)

    seen = {spec.initial}
    todo = [spec.initial]
    while todo:
        for target in targets(by_name[todo.pop()]):
            if isinstance(target, str) and target not in seen:
                seen.add(target)
                todo.append(target)
    for state_name in by_name:
        if state_name not in seen:
            raise fail(f"state is unreachable from initial state {spec.initial!r}", state_name)
    return by_name, tables


def _check_timeout(timeout: object, state: str, fail: Callable[..., SpecError]) -> None:
    if not isinstance(timeout, Timeout):
        raise fail(f"timeout must be a Timeout, got {timeout!r}", state, "timeout")
    after = timeout.after
    if not isinstance(after, int | float) or isinstance(after, bool) or not after > 0:
        raise fail(f"timeout after must be a number > 0, got {after!r}", state, "timeout")
    if not after <= MAX_SECONDS:  # also refuses inf (NaN failed above)
        raise fail(f"timeout after must be finite and at most {MAX_SECONDS:g} s (100 years), "
                   f"got {after!r}", state, "timeout")
    warn_before = timeout.warn_before
    if (warn_before is None) != (timeout.warn is None):
        raise fail("warn_before and warn go together: set both or neither", state, "timeout")
    if warn_before is not None:
        if not isinstance(warn_before, int | float) or isinstance(warn_before, bool):
            raise fail(f"warn_before must be a number, got {warn_before!r}", state, "timeout")
        if not 0 < warn_before < after:  # (also refuses NaN)
            raise fail(f"warn_before must be > 0 and < after ({after}), got {warn_before}",
                       state, "timeout")


def _check_branches(timeout: Timeout, state: str, fail: Callable[..., SpecError],
                    check_target: Callable[[object, str | None, str | None], None],
                    check_callable: Callable[[str, object, str | None, str | None], None]
                    ) -> None:
    """A guarded timeout's `when` branches: each a `When` with a sync guard (the guard-less
    last branch is the timeout's own target and action)."""
    if not isinstance(timeout.when, tuple):
        raise fail(f"timeout when must be a list of When, got {timeout.when!r}", state, "timeout")
    for i, branch in enumerate(timeout.when):
        where = f"timeout when[{i}]"
        if not isinstance(branch, When):
            raise fail(f"{where} must be a When, got {branch!r}", state, "timeout")
        if branch.guard is None:
            raise fail(f"{where} has no guard: only the last branch (the timeout's own target "
                       "and action) is taken unguarded; the branches after it could never be",
                       state, "timeout")
        check_target(branch.target, state, "timeout")
        check_callable(f"{where} guard", branch.guard, state, "timeout")
        check_callable(f"{where} action", branch.action, state, "timeout")
        if _is_async(branch.guard):
            raise fail(f"{where} guard {branch.guard_name} is async: a timeout chooses its "
                       "branch at once, with sync guards", state, "timeout")


def _check_call(call: object, state: str, fail: Callable[..., SpecError],
                by_name: Mapping[str, State]) -> None:
    if not isinstance(call, Call):
        raise fail(f"call must be a Call, got {call!r}", state, "call")
    child = call.spec
    if not isinstance(child, Spec):
        raise fail(f"call spec must be a Spec, got {child!r}", state, "call")
    if call.timeout not in ("paused", "running"):
        raise fail(f"call timeout must be 'paused' or 'running', got {call.timeout!r}", state,
                   "call")
    if call.data_key is not None and (not isinstance(call.data_key, str) or not call.data_key):
        raise fail(f"call data_key must be a non-empty str, got {call.data_key!r}", state,
                   "call")
    if not call.on_end:
        raise fail("call on_end must map the child's endings to targets", state, "call")
    endings = set(child.final_states) | {"stop", "timeout", "*"}
    for ending, target in call.on_end.items():
        if ending not in endings:
            raise fail(f"on_end {ending!r} is not an ending of {child.name!r} (its final states "
                       f"{sorted(child.final_states)}, 'stop', 'timeout' or '*')", state, "call")
        if target is not STOP and (not isinstance(target, str) or target not in by_name):
            raise fail(f"on_end {ending!r} goes to {target!r}: a declared state or STOP",
                       state, "call")
    if "*" not in call.on_end:
        missing = sorted(f for f in child.final_states if f not in call.on_end)
        if missing:
            raise fail(f"on_end has no target for {child.name!r}'s final state(s) "
                       f"{', '.join(missing)} (map them, or '*')", state, "call")
    depth = _call_depth(child, ())
    if depth + 1 > CALL_DEPTH_LIMIT:
        raise fail(f"sub-conversations nest {depth + 1} deep, more than {CALL_DEPTH_LIMIT}",
                   state, "call")
    for spec_, st, t in _guards_below(child):
        if _is_async(t):
            raise fail(f"guard {getattr(t, '__name__', t)!r} of {spec_}'s state {st!r} is async: "
                       "a called spec's guards must be sync (the step chooses inside it)",
                       state, "call")


def _call_depth(spec: Spec, path: tuple[str, ...]) -> int:
    """How deep `spec` calls (0: it calls nothing)."""
    if spec.name in path or len(path) > CALL_DEPTH_LIMIT:
        return CALL_DEPTH_LIMIT + 1  # it calls itself: no bound
    deepest = 0
    for st in spec.states:
        if st.call is not None:
            deepest = max(deepest, 1 + _call_depth(st.call.spec, (*path, spec.name)))
    return deepest


def _guards_below(spec: Spec) -> Iterable[tuple[str, str, object]]:
    for st in spec.states:
        for t in st.on:
            if t.guard is not None:
                yield spec.name, st.name, t.guard
        if st.timeout is not None:
            for w in st.timeout.when:
                yield spec.name, st.name, w.guard
    for t in spec.any_state:
        if t.guard is not None:
            yield spec.name, "*", t.guard
