"""The scenario a planner edits in the web app: a raw scenario table (what a TOML file holds), read from a
shipped scenario or an upload, changed one dotted path at a time, checked by the command line's own
`build_scenario`, and written back as TOML.

A draft holds no `extends`: the files it extended are merged in when it is read, so that it stands alone when it
is saved and downloaded. An upload may extend only the shipped scenarios (csfsim's scenarios/ folder).
"""

from __future__ import annotations

import copy
import hashlib
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from sim.config.parameters import Scenario
from sim.config.scenario import build_scenario, expected_patients, merge_referral_tables, read_scenario_raw
from sim.config.schema import REPO_ROOT, read_toml
from sim.errors import ScenarioError, printable, toml_text
from sim.io import toml_document
from sim.io.outputs import atomic_write_text

SCENARIOS = REPO_ROOT / "scenarios"
UPLOAD_MAX_BYTES = 1_000_000


def shipped_scenarios() -> dict[str, Path]:
    """Label -> file of every scenario csfsim ships (not base.toml, the schema)."""
    out: dict[str, Path] = {}
    for path in sorted(SCENARIOS.rglob("*.toml")):
        if path.name == "base.toml":
            continue
        rel = path.relative_to(SCENARIOS)
        out[str(rel.with_suffix(""))] = path
    return dict(sorted(out.items(), key=lambda kv: (kv[0].count("/"), kv[0])))


def _standalone(raw: dict[str, Any], shown: str) -> dict[str, Any]:
    """One place per setting: `[referral.CENTER]` tables folded into their centers, as `build_scenario` reads them,
    so that the form of a center shows and edits every referral setting it has."""
    if "referral" in raw:
        raw = dict(raw)
        raw["centers"] = merge_referral_tables(raw.pop("referral"), raw.get("centers"), shown)
    return raw


def read_shipped(label: str) -> dict[str, Any]:
    """The raw table of a shipped scenario, its `extends` merged in."""
    files = shipped_scenarios()
    if label not in files:
        raise ScenarioError("(app)", "scenario", label, f"one of {', '.join(files)}")
    shown = f"scenarios/{label}.toml"
    return _standalone(read_scenario_raw(files[label], shown), shown)


def read_upload(data: bytes, filename: str) -> dict[str, Any]:
    """The raw table of an uploaded scenario file. Its `extends` may reach only csfsim's scenarios/ folder: an
    upload must not read other files of the machine that runs the app."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise ScenarioError(filename, "(file)", f"{len(data)} bytes", f"a scenario file under {UPLOAD_MAX_BYTES:,} "
                                                                       "bytes")
    with tempfile.TemporaryDirectory(prefix="csfsim-upload-") as folder:
        path = Path(folder) / "upload.toml"
        path.write_bytes(data)
        raw = read_toml(path, filename)
        parent = raw.get("extends")
        if isinstance(parent, str) and parent and "\0" not in parent and not Path(parent).is_absolute():
            # An upload has no folder of its own: its `extends` is read as a path in the shipped scenarios.
            raw["extends"] = str(SCENARIOS / parent)
            path.write_text(toml_document.dumps(raw, header=""), encoding="utf-8")
        return _standalone(read_scenario_raw(path, filename, roots=(SCENARIOS,)), filename)


def check(raw: dict[str, Any], shown: str) -> Scenario:
    """The draft validated and compiled, or the command line's one-line ScenarioError."""
    return build_scenario(copy.deepcopy(raw), shown)


def get(raw: dict[str, Any], path: str) -> Any:
    node: Any = raw
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def with_value(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of the draft with `path` set to `value` (tables on the way made as needed)."""
    out = copy.deepcopy(raw)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value
    return out


def to_toml(raw: dict[str, Any], name: str) -> str:
    ordered = {k: raw[k] for k in ("scenario", "centers") if k in raw} | raw  # what it is first, then the rest
    return toml_document.dumps(ordered, header=f"# {printable(name)}: a csfsim scenario built in the web app.\n"
                                           "# Check it with: csfsim validate FILE\n")


def fingerprint(text: str) -> str:
    """A short name for a scenario's content: equal texts, equal names (the app's run cache is keyed on it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def save(raw: dict[str, Any], name: str, folder: Path) -> Path:
    """Write the draft into `folder` under its fingerprint (the same draft is written once) and return the file."""
    text = to_toml(raw, name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{fingerprint(text)}.toml"
    if not path.exists():
        atomic_write_text(path, text)
    return path


CENTER_COLUMNS = ("center", "profile", "catchment_share", "catchment_adults", "refers_to")


def centers_frame(raw: dict[str, Any]) -> pd.DataFrame:
    """The draft's centers as a table a planner edits: name, profile, catchment and referral target."""
    centers = raw.get("centers") if isinstance(raw.get("centers"), dict) else {}
    rows = [{"center": name, "profile": body.get("profile"),
             "catchment_share": None if "catchment_share" not in body else toml_text(body["catchment_share"]),
             "catchment_adults": body.get("catchment_adults"), "refers_to": body.get("refers_to", "")}
            for name, body in centers.items() if isinstance(body, dict)]
    frame = pd.DataFrame(rows, columns=list(CENTER_COLUMNS))
    frame["catchment_share"] = frame["catchment_share"].astype(object)
    frame["catchment_adults"] = frame["catchment_adults"].astype("Int64")
    frame["refers_to"] = frame["refers_to"].fillna("").astype(str)
    return frame


def centers_from_frame(raw: dict[str, Any], frame: pd.DataFrame) -> dict[str, Any]:
    """The centers table back as [centers.NAME] tables: each center keeps what else it sets (its own
    parameters), a renamed one too (a row is the center of its place in `centers_frame`, and referrals to it
    follow the new name); a row without a name is left out; an empty catchment cell or referral target is not
    set."""
    old = raw.get("centers") if isinstance(raw.get("centers"), dict) else {}
    old_names = list(old)
    renamed: dict[str, str] = {}
    out: dict[str, Any] = {}
    for index, row in zip(frame.index, frame.to_dict("records"), strict=True):
        name = "" if pd.isna(row["center"]) else str(row["center"]).strip()
        if not name:
            continue
        was = old_names[index] if isinstance(index, int) and 0 <= index < len(old_names) else name
        if was != name:
            renamed[was] = name
        body = copy.deepcopy(old.get(was, {})) if isinstance(old.get(was), dict) else {}
        if not pd.isna(row["profile"]):
            body["profile"] = row["profile"]
        share = row["catchment_share"]
        if share is None or (isinstance(share, float) and pd.isna(share)) or not str(share).strip():
            body.pop("catchment_share", None)
        else:
            body["catchment_share"] = _toml_value(str(share))
        if pd.isna(row["catchment_adults"]):
            body.pop("catchment_adults", None)
        else:
            body["catchment_adults"] = int(row["catchment_adults"])
        target = "" if pd.isna(row["refers_to"]) else str(row["refers_to"])
        if target:
            body["refers_to"] = target
        else:
            body.pop("refers_to", None)
        out[name] = body
    for body in out.values():
        if body.get("refers_to") in renamed:
            body["refers_to"] = renamed[body["refers_to"]]
    return out


def _toml_value(text: str) -> Any:
    """A cell's TOML value (0.25, or { spontaneous = 1.0, ... } per etiology); the text itself when it is not
    TOML, for the scenario check to name."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def patients_per_replication(scenario: Scenario) -> float:
    """Patients one replication of the scenario draws, expected (as the scenario's own guard counts them)."""
    return expected_patients(scenario.population, scenario.horizon_days)


def file_stem(name: str) -> str:
    """A file name for a scenario called `name`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60] or "scenario"
