"""Helpers for the AstrBot compat tests: load the example plugins by path (the test
directories are not packages, so a plain import could clash with another `plugins`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).parent


def load_plugin_module(name: str) -> ModuleType:
    modname = f"convo_fsm_compat_test_plugins.{name}"
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(modname, HERE / "plugins" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module
