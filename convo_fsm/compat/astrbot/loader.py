"""Loading an unmodified AstrBot plugin folder: an import hook, active only while a
`PluginHost` needs it, maps `astrbot` and `astrbot.*` to `convo_fsm.compat.astrbot.*`.

The plugin's package is imported under a name of its own (`convo_fsm_plugins.<folder>_<n>`,
so relative imports between its files work and two hosts never share module state). While
its `main.py` runs, any real `astrbot` modules already imported are set aside, so the
plugin binds to the compat tree even where AstrBot is installed; later `import astrbot...`
inside handlers reach the compat tree as long as the host is open and real AstrBot is not
loaded in the process. A module the compat tree does not have is a `ModuleNotFoundError`
naming it. On `release()` the aliases and the plugin's modules leave `sys.modules`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import re
import sys
import types
from pathlib import Path
from typing import Any

__all__ = ["PluginImporter"]

PREFIX = "convo_fsm.compat."
ROOT_PACKAGE = "convo_fsm_plugins"
_count = itertools.count(1)


def _is_astrbot(name: str) -> bool:
    return name == "astrbot" or name.startswith("astrbot.")


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, module: types.ModuleType) -> None:
        self.module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        """Already executed: it is the compat module itself."""


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.users = 0
        self.aliased: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if not _is_astrbot(fullname):
            return None
        target_name = PREFIX + fullname
        try:
            module = importlib.import_module(target_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and target_name.startswith(exc.name):
                raise ModuleNotFoundError(
                    f"{fullname} is not offered by convo_fsm.compat.astrbot (README, 'AstrBot "
                    "plugins', lists what is)", name=fullname) from None
            raise
        self.aliased.add(fullname)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module),
                                               is_package=hasattr(module, "__path__"))


_finder = _AliasFinder()


class PluginImporter:
    """One host's use of the hook (see the module docstring)."""

    def __init__(self) -> None:
        self.active = False
        self.packages: list[str] = []

    def _activate(self) -> None:
        if not self.active:
            self.active = True
            _finder.users += 1
            if _finder not in sys.meta_path:
                sys.meta_path.insert(0, _finder)

    def load_package(self, folder: Path) -> types.ModuleType:
        """Import `folder` (an AstrBot plugin: `main.py`, maybe more files) as a package and
        return its `main` module."""
        folder = Path(folder).absolute()
        main = folder / "main.py"
        if not main.is_file():
            raise FileNotFoundError(f"{folder} is not an AstrBot plugin folder: no main.py")
        self._activate()
        if ROOT_PACKAGE not in sys.modules:
            root = types.ModuleType(ROOT_PACKAGE)
            root.__path__ = []
            sys.modules[ROOT_PACKAGE] = root
        safe = re.sub(r"\W", "_", folder.name) or "plugin"
        name = f"{ROOT_PACKAGE}.{safe}_{next(_count)}"
        init = folder / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                name, init, submodule_search_locations=[str(folder)])
            if spec is None:
                raise ImportError(f"cannot import {folder}")
        else:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
        package = importlib.util.module_from_spec(spec)
        real = {k: sys.modules.pop(k) for k in list(sys.modules) if _is_astrbot(k)}
        try:
            sys.modules[name] = package
            self.packages.append(name)
            if init.is_file():
                assert spec.loader is not None
                spec.loader.exec_module(package)
            return importlib.import_module(f"{name}.main")
        finally:
            if real:  # real AstrBot is loaded here: it gets its modules back
                for k in [k for k in sys.modules if _is_astrbot(k)]:
                    del sys.modules[k]
                    _finder.aliased.discard(k)
                sys.modules.update(real)

    def release(self) -> None:
        """Drop the plugin modules; the last host also drops the hook and its aliases."""
        for pkg in self.packages:
            for k in [k for k in sys.modules if k == pkg or k.startswith(pkg + ".")]:
                del sys.modules[k]
        self.packages.clear()
        if self.active:
            self.active = False
            _finder.users -= 1
            if _finder.users <= 0:
                if _finder in sys.meta_path:
                    sys.meta_path.remove(_finder)
                for k in _finder.aliased:
                    module = sys.modules.get(k)
                    if module is not None and module.__name__.startswith(PREFIX):
                        del sys.modules[k]
                _finder.aliased.clear()
