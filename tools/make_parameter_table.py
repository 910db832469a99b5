"""Generate docs/parameters.md from scenarios/base.toml (run by `make docs`; a test checks it is current)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.config.distributions import Distribution  # noqa: E402
from sim.config.schema import base_tree, flatten  # noqa: E402

TARGET = ROOT / "docs" / "parameters.md"


def render() -> str:
    params = flatten(base_tree())
    weak = sum(p.weak for p in params.values())
    lines = [
        "# Parameters (generated from scenarios/base.toml by tools/make_parameter_table.py; do not edit)",
        "",
        f"{len(params)} parameters; {weak} are graded **L** (weak: placeholders or low-quality sources) and should be",
        "varied in sensitivity runs. Grades: H = seen word for word in the source's abstract or page; M = seen in a",
        "secondary page citing the source; L = low-quality source, memory or placeholder; - = model setting.",
        "What the sources say, along the pathway and in this project's words: [evidence.md](evidence.md).",
        "",
        "| parameter | value | unit | grade | source |",
        "|---|---|---|---|---|",
    ]
    for path, p in params.items():
        value = (p.value.describe() if isinstance(p.value, Distribution)
                 else ", ".join(p.value) if p.unit == "groups" else repr(p.value))
        grade = f"**{p.grade}** (weak)" if p.weak else p.grade
        source = p.source.replace("|", "/")
        lines.append(f"| `{path}` | {value} | {p.unit} | {grade} | {source} |")
    lines += _uncertainty_lines()
    return "\n".join(lines) + "\n"


def _uncertainty_lines() -> list[str]:
    """The PSA distribution of every uncertain parameter of base.toml (sim/config/uncertainty.py)."""
    from sim.config.scenario import load_scenario
    from sim.config.uncertainty import parameter_space

    scenario = load_scenario(ROOT / "scenarios" / "experienced_center.toml")
    space = parameter_space(scenario)
    lines = [
        "",
        "## Uncertainty (PSA and sensitivity analysis)",
        "",
        f"{len(space)} uncertain inputs, from `[uncertainty]` in base.toml: listed ones as given, the rest by grade",
        "(beta n / gamma cv: " + "; ".join(f"{g}: n = {v['n']:g}, cv = {v['cv']:g}"
                                            for g, v in scenario.resolved["uncertainty"]["by_grade"].items()) + ").",
        "Beta and gamma are centred on the value (mean), lognormal on the median; a duration distribution is scaled",
        "by a factor. Counts, flags, choices and grade '-' settings are fixed.",
        "",
        "| parameter | distribution | grade | source of the spread |",
        "|---|---|---|---|",
    ]
    for u in space:
        lines.append(f"| `{u.path}` | {u.describe()} | {u.grade} | {u.source.replace('|', '/')} |")
    return lines


def main() -> int:
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
