"""`transitions` interop: a Spec from a `transitions` machine configuration, and back.

    spec = from_transitions(config, registry={"is_42": is_42}, name="quiz")
    config = to_transitions(spec)          # for transitions.Machine / GraphMachine tooling
    machine = Machine(model=None, **config)

A `transitions` configuration (what `Machine(**config)` and `MarkupMachine.markup` use):
`states` (names, or dicts with `name`, the `Timeout` state extension's `timeout` and
`on_timeout`, and `final`), `transitions` (dicts or `[trigger, source, dest]` lists;
`source` a name, a list or "*"; `dest` None for an internal transition; `conditions`,
`unless`, `before`/`after` callbacks) and `initial`. Triggers are our event names.

- Into a Spec: a transition from "*" is an any-state transition; `dest` None is `KEEP`; a
  trigger named by a state's `on_timeout` (or `to_<state>`) is that state's timeout, its
  transitions in order becoming the guarded branches (`When`); `conditions`/`unless` become
  one guard, `before` and `after` one action. Callbacks given as names are resolved only
  from `registry`, as spec files are (unknown: `SpecError` naming it); callables are used
  as they are. Either way a callback is called with the `convo_fsm.Context`.
- Out of a Spec: every state's table as `transitions` sees it, with our precedence made
  explicit (a state's own transitions for an event, else the any-state ones, then the
  wildcards, each in order: the first whose conditions pass wins, as in `transitions`);
  `STOP` is the state `STOPPED`, a timeout a `timeout`/`on_timeout` state with the trigger
  `TIMEOUT` (guarded branches in order), event names no transition names go through the
  trigger `OTHER` (so wildcards apply). Guards are `conditions` (callables taking the
  Context), actions `after` callbacks. transitions has no counterpart of `reset_timeout=False`
  (a KEEP that leaves the timeout running): it comes back as a KEEP that restarts it.

Nothing here imports `transitions`: a configuration is plain data (install `transitions`
to run one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from convo_fsm.context import Context
from convo_fsm.spec import (
    ANY,
    KEEP,
    STOP,
    On,
    Spec,
    SpecError,
    State,
    Target,
    Timeout,
    When,
)

__all__ = ["OTHER", "STOPPED", "TIMEOUT", "from_transitions", "to_transitions"]

STOPPED: Final = "__stopped__"
"""The state `STOP` becomes in an exported configuration."""
TIMEOUT: Final = "__timeout__"
"""The trigger of an exported state's timeout (its `on_timeout`)."""
OTHER: Final = "__other__"
"""The trigger for an event no transition names (only wildcards apply)."""


# -- into a Spec -------------------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str) or callable(value):
        return [value]
    return list(value)


def from_transitions(config: Mapping[str, Any], *, name: str,
                     registry: Mapping[str, Callable[..., Any]] | None = None,
                     any_event: str = ANY) -> Spec:
    """A `Spec` from a `transitions` configuration (see the module docstring)."""
    registry = {} if registry is None else registry

    def fail(message: str, state: str | None = None, event: str | None = None) -> SpecError:
        return SpecError(message, spec=name, state=state, event=event)

    def resolve(cb: Any, what: str, state: str | None, event: str | None) -> Callable[..., Any]:
        if callable(cb):
            return cb  # type: ignore[no-any-return]
        if isinstance(cb, str):
            found = registry.get(cb)
            if found is None or not callable(found):
                raise fail(f"unknown {what} {cb!r}: callbacks named in a configuration are "
                           f"resolved only from the registry (known: "
                           f"{', '.join(sorted(registry)) or 'none'})", state, event)
            return found
        raise fail(f"{what} must be a name or a callable, got {cb!r}", state, event)

    def guard_of(raw: Mapping[str, Any], state: str | None, event: str) -> Any:
        conditions = [resolve(c, "condition", state, event)
                      for c in _as_list(raw.get("conditions"))]
        unless = [resolve(c, "condition", state, event) for c in _as_list(raw.get("unless"))]
        if not conditions and not unless:
            return None
        if len(conditions) == 1 and not unless:
            return conditions[0]

        def guard(ctx: Context) -> bool:
            return all(c(ctx) for c in conditions) and not any(u(ctx) for u in unless)

        guard.__name__ = " and ".join(
            [getattr(c, "__name__", "condition") for c in conditions]
            + [f"not {getattr(u, '__name__', 'condition')}" for u in unless])
        return guard

    def action_of(raw: Mapping[str, Any], state: str | None, event: str) -> Any:
        callbacks = [resolve(c, "callback", state, event)
                     for key in ("before", "after") for c in _as_list(raw.get(key))]
        if not callbacks:
            return None
        if len(callbacks) == 1:
            return callbacks[0]

        def action(ctx: Context) -> None:
            for c in callbacks:
                c(ctx)

        action.__name__ = "+".join(getattr(c, "__name__", "callback") for c in callbacks)
        return action

    raw_states = config.get("states")
    if not isinstance(raw_states, Sequence) or isinstance(raw_states, str) or not raw_states:
        raise fail("a transitions configuration needs a list of states")
    states: dict[str, dict[str, Any]] = {}
    for raw in raw_states:
        entry = {"name": raw} if isinstance(raw, str) else dict(raw)
        if not isinstance(entry.get("name"), str):
            raise fail(f"a state is a name or a dict with a 'name', got {raw!r}")
        if entry["name"] == STOPPED:  # an exported spec's STOP: not a state of ours
            continue
        if entry["name"] in states:
            raise fail("duplicate state", entry["name"])
        states[entry["name"]] = entry

    def target_of(source: str, dest: Any) -> Target:
        if dest is None:
            return KEEP
        if dest == STOPPED:
            return STOP
        if dest == "=":  # transitions' reflexive dest: re-enter the source
            return source
        return dest  # type: ignore[no-any-return]

    ons: dict[str, list[On]] = {s: [] for s in states}
    everywhere: list[On] = []
    timed: dict[str, list[tuple[Target, Any, Any]]] = {s: [] for s in states}
    timeout_triggers = {s: e.get("on_timeout") for s, e in states.items() if e.get("timeout")}
    for raw in config.get("transitions", ()):
        if isinstance(raw, Sequence) and not isinstance(raw, str | Mapping):
            keys = ("trigger", "source", "dest", "conditions", "unless", "before", "after")
            raw = dict(zip(keys, raw, strict=False))
        if not isinstance(raw, Mapping) or "trigger" not in raw or "source" not in raw:
            raise fail(f"a transition needs a trigger and a source, got {raw!r}")
        trigger = raw["trigger"]
        event = any_event if trigger == OTHER else trigger
        sources = _as_list(raw["source"])
        for source in sources:
            if source == "*":
                everywhere.append(On(event, target_of(source, raw.get("dest")),
                                     guard=guard_of(raw, None, event),
                                     action=action_of(raw, None, event)))
                continue
            if source not in states:
                raise fail(f"transition {trigger!r} from undeclared state {source!r}",
                           event=event)
            dest = raw.get("dest")
            target = target_of(source, dest)
            on_timeout = timeout_triggers.get(source)
            if on_timeout is not None and trigger in (
                    _as_list(on_timeout) if not callable(on_timeout) else []):
                timed[source].append((target, guard_of(raw, source, "timeout"),
                                      action_of(raw, source, "timeout")))
                continue
            ons[source].append(On(event, target, guard=guard_of(raw, source, event),
                                  action=action_of(raw, source, event)))
    built: list[State] = []
    for state_name, entry in states.items():
        timeout = None
        after = entry.get("timeout")
        if after:
            branches = timed[state_name]
            on_timeout = entry.get("on_timeout")
            if not branches:
                names = _as_list(on_timeout)
                auto = [n[3:] for n in names if isinstance(n, str) and n.startswith("to_")
                        and n[3:] in states]
                if not auto:
                    raise fail(f"timeout {after!r} with on_timeout {on_timeout!r}: no "
                               "transition has that trigger from this state (or give "
                               "'to_<state>')", state_name, "timeout")
                branches = [(auto[0], None, None)]
            *guarded, last = branches
            if last[1] is not None:
                raise fail("the last transition of a timeout must have no conditions (it is "
                           "taken when none of the others' pass)", state_name, "timeout")
            timeout = Timeout(after, last[0], action=last[2],
                              when=[When(t, guard=g, action=a) for t, g, a in guarded])
        built.append(State(state_name, on=ons[state_name], timeout=timeout,
                           final=bool(entry.get("final", False))))
    initial = config.get("initial", next(iter(states)))
    if not isinstance(initial, str):
        raise fail(f"initial must be a state name, got {initial!r}")
    return Spec(name=name, initial=initial, states=built, any_state=everywhere)


# -- out of a Spec -----------------------------------------------------------------------------
def to_transitions(spec: Spec, *, timeouts: bool = True) -> dict[str, Any]:
    """`spec` as a `transitions` configuration (see the module docstring): pass it to
    `Machine(model=..., **config)` (with `add_state_features(Timeout)` for the timeouts).
    `timeouts=False` leaves the states' `timeout`/`on_timeout` out (the `TIMEOUT` trigger's
    transitions stay), for a plain `Machine` whose timeouts you trigger yourself."""
    if spec.calls:
        raise SpecError("a spec with sub-conversations has no transitions equivalent",
                        spec=spec.name)
    names = [*sorted(spec.events), OTHER]

    def dest(target: Target) -> str | None:
        if target is KEEP:
            return None
        if target is STOP:
            return STOPPED
        if not isinstance(target, str):
            raise SpecError(f"target {target!r} has no transitions equivalent", spec=spec.name)
        return target

    def entry(trigger: str, source: str, t: On | When) -> dict[str, Any]:
        out: dict[str, Any] = {"trigger": trigger, "source": source, "dest": dest(t.target)}
        if t.guard is not None:
            out["conditions"] = [t.guard]
        if t.action is not None:
            out["after"] = [t.action]
        return out

    states: list[Any] = []
    transitions: list[dict[str, Any]] = []
    for state in spec.states:
        timeout = state.timeout
        if timeout is not None and timeouts:
            states.append({"name": state.name, "timeout": timeout.after,
                           "on_timeout": TIMEOUT})
        elif state.final:
            states.append({"name": state.name, "final": True})
        else:
            states.append(state.name)
        if state.final:
            continue
        for name in names:
            for t in spec.own_lookup(state.name, ANY if name == OTHER else name):
                transitions.append(entry(name, state.name, t))
        if timeout is not None:
            for branch in timeout.branches:
                transitions.append(entry(TIMEOUT, state.name, branch))
    states.append({"name": STOPPED, "final": True})
    return {"states": states, "transitions": transitions, "initial": spec.initial,
            "auto_transitions": False, "ignore_invalid_triggers": True}

