"""NoneBug set-up for tests/nonebot_real (NoneBot2 + OneBot v11, offline).

NoneBug's pytest plugin (session-scoped autouse fixtures that initialise NoneBot) is
disabled for the rest of the suite (`-p no:nonebug` in pyproject's addopts), so these tests
run apart, from tests/adapters/test_nonebot.py:

    .venv/bin/python -m pytest -o addopts=-q -p nonebug \
        -o asyncio_default_fixture_loop_scope=session \
        -o asyncio_default_test_loop_scope=session tests/nonebot_real
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from nonebug import NONEBOT_INIT_KWARGS

# The specs the three framework adapters' tests share.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "adapters"))


def pytest_configure(config: pytest.Config) -> None:
    # The "none" driver: no web server, no network; NoneBug feeds events and answers APIs.
    config.stash[NONEBOT_INIT_KWARGS] = {"driver": "~none", "command_start": {"/"},
                                         "log_level": "WARNING"}


@pytest.fixture(scope="session", autouse=True)
def after_nonebot_init(after_nonebot_init: None) -> None:
    import nonebot
    from nonebot.adapters.onebot.v11 import Adapter

    nonebot.get_driver().register_adapter(Adapter)
