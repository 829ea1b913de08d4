"""Real processes for the fleet tests: redis-server (standalone or a 3-master Cluster) on free
loopback ports, fleet worker processes (fleet_proc.py), and the checks run on what they
committed. Nothing here sleeps for a fixed time: `until` polls a condition up to a deadline."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

PROC = Path(__file__).with_name("fleet_proc.py")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(cond: Callable[[], Awaitable[bool] | bool], timeout: float, what: str) -> None:
    """Wait until `cond()` is true, checking every 20 ms; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


class RedisProc:
    """One redis-server on 127.0.0.1:`port`, data in `folder` (AOF with fsync on every write
    when `aof`), which can be killed and started again on the same data."""

    def __init__(self, folder: Path, *, aof: bool = True, cluster: bool = False,
                 port: int | None = None) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.fixed_port = port is not None
        self.port = port or free_port()
        self.aof = aof
        self.cluster = cluster
        # A cluster node's bus port defaults to port + 10000, which does not exist for a free
        # port above 55535 (redis-server then exits): give it a free port of its own.
        self.bus_port = free_port() if cluster else None
        self.proc: subprocess.Popen[str] | None = None
        self.started = False  # once started, a restart must keep its port

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--dir", str(self.folder), "--loglevel", "notice"]
        args += (["--appendonly", "yes", "--appendfsync", "always"] if self.aof
                 else ["--appendonly", "no"])
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file",
                     str(self.folder / "nodes.conf"), "--cluster-node-timeout", "5000",
                     "--cluster-port", str(self.bus_port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        said: list[str] = []
        for line in self.proc.stdout:  # a blocking read until the server says it is ready
            if "Ready to accept connections" in line:
                break
            said = [*said[-9:], line]
        else:
            code = self.proc.wait()
            if not self.fixed_port and not self.started and not getattr(self, "_retried", False):
                self._retried = True  # the free port was taken meanwhile: other ones
                self.port = free_port()
                self.bus_port = free_port() if self.cluster else None
                self.start()
                return
            raise RuntimeError(f"redis-server on port {self.port} exited with {code}; "
                               f"it said:\n{''.join(said)}")
        self.started = True
        # Keep draining its output so the pipe never fills.
        out = self.proc.stdout
        import threading

        threading.Thread(target=lambda: [None for _ in out], daemon=True).start()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def make_cluster(folder: Path) -> list[RedisProc]:
    """Three masters with the 16384 slots split between them (`redis-cli --cluster create`)."""
    nodes = [RedisProc(folder / f"n{i}", cluster=True) for i in range(3)]
    for node in nodes:
        node.start()
    cli = shutil.which("redis-cli")
    assert cli is not None, "redis-cli is not installed"
    subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                    "--cluster-replicas", "0", "--cluster-yes"], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)
    end = time.monotonic() + 60
    while True:  # until the cluster agrees on its state
        got = subprocess.run([cli, "-p", str(nodes[0].port), "cluster", "info"],
                             capture_output=True, text=True, timeout=30).stdout
        if "cluster_state:ok" in got:
            break
        if time.monotonic() > end:
            raise RuntimeError(f"cluster did not come up: {got}")
        time.sleep(0.05)  # (setup, before any test logic: polling the cluster's state)
    return nodes


class Workers:
    """Fleet worker processes, by id; their output goes to files in `folder`."""

    def __init__(self, url: str, prefix: str, partitions: int, folder: Path, *,
                 lease: float, cluster: bool = False) -> None:
        self.url, self.prefix, self.partitions = url, prefix, partitions
        self.folder, self.lease, self.cluster = folder, lease, cluster
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stopped: set[str] = set()

    def spawn(self, wid: str, skew: float = 0.0) -> None:
        env = {**os.environ, "CONVO_FSM_FAKE_SKEW": repr(skew), "PYTHONPATH": str(ROOT)}
        args = [sys.executable, str(PROC), self.url, self.prefix, str(self.partitions), wid,
                "--lease", repr(self.lease)]
        if self.cluster:
            args.append("--cluster")
        with open(self.folder / f"{wid}.out", "wb") as out, \
                open(self.folder / f"{wid}.err", "wb") as err:
            self.procs[wid] = subprocess.Popen(args, env=env, stdout=out, stderr=err)

    def ready(self, *wids: str) -> bool:
        """Whether these workers said `ready` (one that exited instead fails, with its log)."""
        for wid in wids:
            if self.procs[wid].poll() is not None:
                raise AssertionError(f"worker {wid} exited: {self.log(wid)[-3000:]}")
        return all("ready" in self.output(w) for w in wids)

    def output(self, wid: str) -> str:
        return (self.folder / f"{wid}.out").read_text()

    def log(self, wid: str) -> str:
        return (self.folder / f"{wid}.err").read_text()

    def alive(self) -> list[str]:
        return [w for w, p in self.procs.items() if p.poll() is None and w not in self.stopped]

    def signal(self, wid: str, sig: int) -> None:
        self.procs[wid].send_signal(sig)
        if sig == signal.SIGSTOP:
            self.stopped.add(wid)
        elif sig == signal.SIGCONT:
            self.stopped.discard(wid)

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait(timeout=30)


# -- the checks --------------------------------------------------------------------------------
async def journals(client: Any, prefix: str, partitions: int) -> list[list[str]]:
    out = []
    for p in range(partitions):
        out.append(await client.lrange(f"{prefix}{{p{p}}}:journal", 0, -1))
    return out


def overlaps(journal_lists: list[list[str]]) -> tuple[int, int, int]:
    """Walk each partition's journal (in the order Redis accepted the notes): per key, an
    `enter` while another worker is inside with the same or a newer token, or an `exit` that
    does not match who is inside, is a violation. An `enter` with a newer token than the one
    inside is a takeover (the old holder was fenced off: none of its notes after that is
    accepted). Returns (violations, actions entered, fenced-off actions)."""
    violations = entered = fenced = 0
    for entries in journal_lists:
        inside: dict[str, tuple[str, int]] = {}
        for entry in entries:
            key, text, worker, token_s = entry.split("\t")
            token = int(token_s)
            what = text.split(" ", 1)[0]
            held = inside.get(key)
            if what == "enter":
                entered += 1
                if held is not None:
                    if held[1] >= token:
                        violations += 1
                    else:
                        fenced += 1
                inside[key] = (worker, token)
            else:
                if held != (worker, token):
                    violations += 1
                inside.pop(key, None)
    return violations, entered, fenced
