"""One bad item costs that item: each kind in tests/bad_inputs.CASES, ingested for real.

The same list renders the README's "bad input" table (the test below fails when it is stale).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from bad_inputs import CASES, GOOD_CSV_ROWS, BadInput, good_spectra, readme_table

from startrack.etl.ingest import ingest
from startrack.etl.spectra import process_spec_file
from startrack.warehouse.store import Warehouse

README = Path(__file__).resolve().parents[1] / "README.md"
TABLE_START, TABLE_END = "<!-- bad-inputs:start -->", "<!-- bad-inputs:end -->"
SPECTRA = [c for c in CASES if c.input == "spectra"]
CATALOGS = [c for c in CASES if c.input == "catalog"]
PER_ITEM_S = 2.0  #: bounded time per bad item (a good file takes ~3 ms)


def _ids(cases: list[BadInput]) -> list[str]:
    return [c.kind for c in cases]


@pytest.fixture(scope="module")
def spectra_run(tmp_path_factory):
    """One ingest of a folder with 3 good spectra and every bad spectrum-side item."""
    root = tmp_path_factory.mktemp("bad-spectra")
    folder = root / "in"
    folder.mkdir()
    good = good_spectra(folder)
    made = {case.kind: case.make(folder) for case in SPECTRA}
    locked = made["unreadable subfolder"]
    real_scandir = os.scandir

    def scandir(path="."):  # root reads mode-000 folders: make the listing fail as for a user
        if isinstance(path, str | os.PathLike) and Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    wh = Warehouse(root / "wh")
    t0 = time.monotonic()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "scandir", scandir)
        report = ingest(wh, spectra=[folder], progress=False, workers=1)
    seconds = time.monotonic() - t0
    locked.chmod(0o755)
    snap = wh.current()
    return {
        "report": report,
        "seconds": seconds,
        "made": made,
        "good": good,
        "rejects": snap.table("rejects").to_pylist(),
        "stars": set(snap.table("stars")["star_id"].to_pylist()),
    }


def test_good_spectra_are_kept_and_the_run_is_bounded(spectra_run) -> None:
    report = spectra_run["report"]
    assert report.status == "ok with rejects" and report.spectra_added == 3
    assert spectra_run["stars"] == {"3000-53000-0001", "3000-53000-0002", "3000-53000-0003"}
    assert spectra_run["seconds"] < 30 + PER_ITEM_S * len(SPECTRA)
    assert len(spectra_run["rejects"]) == len(SPECTRA)  # one reject each, nothing else


@pytest.mark.parametrize("case", SPECTRA, ids=_ids(SPECTRA))
def test_each_bad_spectrum_item_is_one_reject(spectra_run, case: BadInput) -> None:
    path = spectra_run["made"][case.kind]
    mine = [r for r in spectra_run["rejects"] if r["source"] == str(path)]
    assert len(mine) == 1, spectra_run["rejects"]
    assert mine[0]["item"] == case.item and case.reason in mine[0]["reason"], mine[0]
    assert "Traceback" not in mine[0]["reason"] and "unexpected" not in mine[0]["reason"]


@pytest.mark.parametrize(
    "case",
    [c for c in SPECTRA if c.item == "file"],
    ids=_ids([c for c in SPECTRA if c.item == "file"]),
)
def test_each_bad_file_is_read_in_bounded_time(tmp_path, case: BadInput) -> None:
    path = case.make(tmp_path)
    t0 = time.monotonic()
    result = process_spec_file(path)
    assert time.monotonic() - t0 < PER_ITEM_S
    if path.is_file():  # (links and folders are refused by the folder walk, before reading)
        assert result.spectrum is None and case.reason in result.rejects[0]["reason"]


@pytest.mark.parametrize("case", CATALOGS, ids=_ids(CATALOGS))
def test_a_bad_catalog_row_costs_only_that_row(tmp_path, case: BadInput) -> None:
    path = case.make(tmp_path / "catalogs")
    wh = Warehouse(tmp_path / "wh")
    t0 = time.monotonic()
    report = ingest(wh, catalogs=[path], progress=False)
    assert time.monotonic() - t0 < 30
    assert report.status == "ok with rejects" and report.catalog_rows == len(GOOD_CSV_ROWS)
    stars = set(wh.current().table("stars")["star_id"].to_pylist())
    assert stars == {"0266-51630-0001", "0266-51630-0002", "0266-51630-0003"}
    rejects = wh.current().table("rejects").to_pylist()
    assert [(r["source"], r["item"]) for r in rejects] == [(str(path), case.item)]
    assert case.reason in rejects[0]["reason"], rejects[0]


def test_readme_table_lists_every_bad_input_kind() -> None:
    text = README.read_text()
    assert TABLE_START in text and TABLE_END in text, "README lacks the bad-inputs table"
    current = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0].strip()
    assert current == readme_table(), (
        "README's bad-input table is stale; replace it with:\n" + readme_table()
    )


def test_a_reader_that_hangs_is_stopped_by_the_per_file_time_limit(tmp_path, monkeypatch):
    """The last line of defence: whatever the header checks miss cannot hold the ingest."""
    from startrack.etl import spectra

    def stuck(_path):
        time.sleep(30)

    path = good_spectra(tmp_path, 1)[0]
    monkeypatch.setattr(spectra, "read_spec", stuck)
    monkeypatch.setattr(spectra, "FILE_TIMEOUT_S", 0.3)
    t0 = time.monotonic()
    result = spectra.process_spec_file(path)
    assert time.monotonic() - t0 < 3
    assert result.spectrum is None and "gave up after 0.3 s" in result.rejects[0]["reason"]


def test_a_header_claiming_naxis2_1e11_is_logged_without_a_traceback(tmp_path, caplog):
    case = next(c for c in CASES if c.kind == "FITS header claiming NAXIS2 = 10^11")
    path = case.make(tmp_path)
    with caplog.at_level("DEBUG"):
        result = process_spec_file(path)
    assert result.spectrum is None and case.reason in result.rejects[0]["reason"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
