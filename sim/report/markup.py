"""The HTML pieces every report page is made of: the style sheet, escaping, tables, numbers as the report prints
them, and embedded figures (no scripts, nothing loaded from the network)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from sim.analysis.stats import is_share

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#111;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #999;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}th,td{border:1px solid #bbb;padding:.25em .5em;
vertical-align:top;text-align:left}th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:.88em;color:#333}.grade-L{background:#fde2c8;font-weight:bold}
.badge{display:inline-block;padding:0 .35em;border:1px solid #555;border-radius:3px;font-size:.8em}
.src{color:#444;font-size:.85em}pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.78em}
ul.findings li{margin:.35em 0}.note{color:#444;font-style:italic}
"""


def fmt_value(kind: str, value: float, signed: bool = False) -> str:
    """A number as the report prints it: days to 0 or 1 decimal, shares as percentages, counts to 2 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    sign = ("+" if signed else "") + "z"  # z: a value that rounds to zero prints 0.0, never -0.0
    if kind == "days":
        return f"{value:{sign}.0f}" if abs(value) >= 10 else f"{value:{sign}.1f}"
    if kind == "whole":
        return f"{value:z.0f}"
    if kind in ("share", "pp"):
        return f"{value * 100:{sign}.1f}" + ("%" if kind == "share" else "")
    return f"{value:{sign}.2f}" if abs(value) >= 1 else f"{value:{sign}.3f}"


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int = 99,
           raw: bool = False) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(("<td class='num'>" if i >= numeric_from else "<td>") + (c if raw else escape(c)) + "</td>"
                        for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def mean_ci(mean: float, lo: float, hi: float, kind: str, signed: bool = False) -> str:
    text = fmt_value(kind, mean, signed)
    if not (pd.isna(lo) or pd.isna(hi)):
        text += f" ({fmt_value(kind, lo, signed)} to {fmt_value(kind, hi, signed)})"
    return text


def display_kind(metric: str) -> str:
    """How the report prints a metric: as a share (per the metric dictionary), in days, or as a count."""
    return "share" if is_share(metric) else "days" if "days" in metric else "count"


def figure_html(png: Path, caption: str, where: str = "figures/") -> str:
    """A figure embedded in the page, its caption naming the PNG and SVG in the folder (`where`: their folder)."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f"<figure id='fig-{escape(png.stem)}'><img src='data:image/png;base64,{data}' alt='{escape(caption)}'>"
            f"<figcaption>{escape(caption)} <span class='src'>({escape(where + png.stem)}.png and .svg)</span>"
            f"</figcaption></figure>")
