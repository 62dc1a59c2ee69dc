"""docs/ARCHITECTURE.md's map: every room it names exists, and every module has a room."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ARCHITECTURE.md"
PARTS = ("startrack", "etl", "warehouse", "ml", "dashboard", "simulator")


def _map_section() -> str:
    text = DOC.read_text()
    assert "## Where to make a change (the map)" in text
    section = text.split("## Where to make a change (the map)", 1)[1]
    assert "\n## " not in section, "the map is the document's last section"
    return section


def _named_paths(section: str) -> list[str]:
    return re.findall(r"`([\w/<>.-]+(?:\.py|/))`", section)


def test_every_path_the_map_names_exists() -> None:
    paths = _named_paths(_map_section())
    assert len(paths) > 40
    for rel in paths:
        if "<" in rel:  # a pattern such as dashboard/pages/<page>.py: its folder must exist
            rel = rel.split("<", 1)[0]
        assert (ROOT / rel).exists(), f"docs/ARCHITECTURE.md's map names {rel}, which is gone"


def test_every_module_of_the_data_path_has_a_room_in_the_map() -> None:
    named = set(_named_paths(_map_section()))
    rooms = {p.split("<", 1)[0] for p in named}
    missing = []
    for part in PARTS:
        for path in sorted((ROOT / part).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if path.name == "__init__.py" or rel.startswith("dashboard/pages/"):
                continue
            if rel not in named and not any(rel.startswith(r) for r in rooms if r.endswith("/")):
                missing.append(rel)
    # small helpers may share a room with their caller, but not many
    assert missing == [], missing
