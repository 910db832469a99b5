"""Write docs/metrics.md from the metric dictionary (`sim/analysis/metrics.py`); `make docs` runs it."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.analysis.metrics import markdown  # noqa: E402

if __name__ == "__main__":
    (ROOT / "docs" / "metrics.md").write_text(markdown(), encoding="utf-8")
    print("wrote docs/metrics.md")
