"""Benchmarks: convo_fsm next to real AstrBot 4.29.3, python-telegram-bot, `transitions`
and a hand-written dict FSM, in one run on one machine.

`python -m benchmarks` (or `convo-fsm bench`) runs every scenario, each in its own
subprocess, and writes `benchmarks/RESULTS.md` and the PNG plots; `--quick` runs small
sizes in under two minutes. Peer scenarios for AstrBot run in a Python 3.12 venv the
runner creates under `benchmarks/.work/` (see `benchmarks.env`).

This package and `benchmarks.common` import only the standard library: the AstrBot
and python-telegram-bot scenarios run in that other interpreter.
"""
