"""The building-block tests read diagrams back with the diagram tests' parsers."""

from __future__ import annotations

import sys
from pathlib import Path

_DIAGRAMS = str(Path(__file__).resolve().parent.parent / "diagrams")
if _DIAGRAMS not in sys.path:
    sys.path.append(_DIAGRAMS)
