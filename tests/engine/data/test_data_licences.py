"""Every file bundled in alfred_data is recorded, and only under a licence Alfred (MIT) may ship."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import alfred_data
from alfred_data import build

DATA_DIR = Path(alfred_data.__file__).parent
# Licences compatible with redistributing the data inside an MIT package. Copyleft
# (GPL, AGPL, LGPL), share-alike and non-commercial licences are not in it.
ALLOWED = {"MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "NCSA", "CC0-1.0",
           "public domain"}
CODE_AND_DOCS = {".py", ".md", ".json", ".pyc"}


def _licence_id(text: str) -> str:
    """The licence identifier a licence text starts with ('NCSA (University of ...)' -> NCSA)."""
    return text.split(" (", 1)[0].strip()


def _violations(manifest: dict[str, Any], provenance_md: str) -> list[str]:
    out = []
    for name, entry in manifest["datasets"].items():
        licence = _licence_id(entry.get("licence", ""))
        if licence not in ALLOWED:
            out.append(f"manifest: {name}: licence {licence!r}")
    for line in re.findall(r"^- Licence: (.*)$", provenance_md, flags=re.MULTILINE):
        if _licence_id(line) not in ALLOWED:
            out.append(f"PROVENANCE.md: licence {_licence_id(line)!r}")
    return out


def _manifest() -> dict[str, Any]:
    return json.loads((DATA_DIR / "manifest.json").read_text(encoding="utf-8"))


def _provenance_md() -> str:
    return (DATA_DIR / "PROVENANCE.md").read_text(encoding="utf-8")


def test_every_bundled_licence_is_in_the_allowed_set() -> None:
    manifest, text = _manifest(), _provenance_md()
    assert _violations(manifest, text) == []
    # one licence line per dataset: none is left without one
    assert len(re.findall(r"^- Licence: ", text, flags=re.MULTILINE)) == len(manifest["datasets"])


def test_the_check_catches_a_copyleft_entry() -> None:
    manifest = _manifest()
    manifest["datasets"]["goog"] = {"licence": "AGPL-3.0 (licence of the backtesting package)"}
    text = _provenance_md() + "\n## `x`\n\n- Licence: GPL-3.0-or-later\n"
    assert _violations(manifest, text) == [
        "manifest: goog: licence 'AGPL-3.0'",
        "PROVENANCE.md: licence 'GPL-3.0-or-later'",
    ]


def test_every_bundled_data_file_has_a_manifest_and_provenance_entry() -> None:
    manifest, text = _manifest(), _provenance_md()
    files = {
        p.name for p in DATA_DIR.rglob("*")
        if p.is_file() and p.suffix not in CODE_AND_DOCS and "__pycache__" not in p.parts
    }
    parquet = {p.name for p in DATA_DIR.glob("*.parquet")}
    assert parquet, "no bundled parquet found"
    listed = {entry["file"] for entry in manifest["datasets"].values()}
    assert files == parquet == listed
    for name in manifest["datasets"]:
        assert f"## `{name}`" in text, name


def test_a_rebuild_only_draws_on_allowed_licences() -> None:
    for spec in build.SPECS:
        assert _licence_id(build._LICENCES[spec.package]) in ALLOWED, spec.name
    assert {spec.package for spec in build.SPECS} == {"skfolio", "arch"}


def test_no_agpl_derived_dataset_is_bundled() -> None:
    names = set(_manifest()["datasets"])
    assert not names & {"goog", "eurusd_1h"}
    assert not (DATA_DIR / "goog.parquet").exists()
    assert not (DATA_DIR / "eurusd_1h.parquet").exists()
