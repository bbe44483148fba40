"""Shared test fixtures. Lives in tests/ on purpose: a root conftest breaks Red's imports."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DEADSIDE = ROOT.parent / "shared" / "data" / "deadside"
