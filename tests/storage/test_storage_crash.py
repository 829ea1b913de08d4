"""A process playing a game is SIGKILLed mid-conversation and restarted on the same SQLite
file: the conversation goes on from its last committed state, the timeout that fell due
while it was down fires at start-up, and a step killed before its commit is handled again
(its replies are sent again: at-least-once)."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

PLAYER = Path(__file__).with_name("crash_player.py")
WAIT = 60.0  # seconds a blocking read may take before the test fails (never a sleep)


class Player:
    def __init__(self, db: Path, now: float, die_on_save: int | None = None) -> None:
        cmd = [sys.executable, str(PLAYER), str(db), "--now", str(now)]
        if die_on_save is not None:
            cmd += ["--die-on-save", str(die_on_save)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        # Start-up: the replies of the timeouts that fell due while down, then `restored N`.
        *self.startup, last = self.until_ok()
        assert last.startswith("restored "), last
        self.restored = int(last.split()[1])

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def read(self) -> str | None:
        return self.lines.get(timeout=WAIT)

    def until_ok(self) -> list[str]:
        """The replies before the next `ok` (startup: before the first command's `ok`)."""
        got: list[str] = []
        while (line := self.read()) is not None and line != "ok":
            got.append(line)
        if line is None:
            got.append("<died>")
        return got

    def send(self, line: str) -> list[str]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.until_ok()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(timeout=WAIT) == -signal.SIGKILL

    def quit(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=WAIT) == 0


def left(replies: list[str]) -> int:
    found = re.search(r"(\d+) attempts? left", " ".join(replies))
    assert found, replies
    return int(found[1])


def test_killed_and_restarted_the_game_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "play.db"
    first = Player(db, now=0)
    assert first.restored == 0
    opening = first.send("/start 1-100 7")
    assert "7 attempts and 60 s per guess" in opening[0], opening
    hints = [first.send("50"), first.send("20")]
    assert [left(h) for h in hints] == [6, 5]
    first.kill()  # mid-conversation: no close, no goodbye

    second = Player(db, now=10)
    assert second.restored == 1 and second.startup == []  # nothing was due
    hint = second.send("30")
    assert left(hint) == 4  # the attempts counted before the kill are still counted
    second.kill()

    # Down for 1000 s: the guess's 60 s timeout fell due while nobody ran; it fires at start.
    third = Player(db, now=1000)
    assert third.restored == 1
    assert any(line.startswith("reply") and "Time's up: the number was" in line
               for line in third.startup), third.startup
    secret = int(re.findall(r"the number was (\d+)", " ".join(third.startup))[0])
    # Every hint given across the three processes agrees with the one secret: nothing lost.
    for guess, reply in ((50, hints[0]), (20, hints[1]), (30, hint)):
        assert ("Lower" in reply[0]) == (secret < guess) and ("Higher" in reply[0]) == (
            secret > guess), (guess, reply, secret)
    assert third.send("40") == ["unhandled"]  # the session is over, and deleted
    third.quit()
    assert Player(db, now=2000).restored == 0


def test_a_step_killed_before_its_commit_is_replayed(tmp_path: Path) -> None:
    db = tmp_path / "play.db"
    # Saves: 1 = the start, 2 = the first guess; die at the second guess's commit.
    first = Player(db, now=0, die_on_save=3)
    first.send("/start 1-100 7")
    assert left(first.send("50")) == 6
    lost = first.send("20")
    assert lost[-1] == "<died>" and left(lost[:-1]) == 5  # its reply went out, then it died
    assert first.proc.wait(timeout=WAIT) == -signal.SIGKILL

    second = Player(db, now=5)
    again = second.send("20")  # the host delivers the unacknowledged message again
    assert again == lost[:-1]  # the same reply once more, from the same committed state
    assert left(second.send("30")) == 4
    second.quit()
