"""A small real warehouse for the dashboard tests: ETL tables, spectra, a model, ML tables.

Stars and spectra come from the real pipeline (``simulate_survey`` + ``ingest``) when it runs,
else from a synthetic writer below (same schemas, built-in template spectra plus noise). The
model is a real (untrained, seeded) ``StarClassifier`` artifact, and the stored predictions
are that model's own ``predict_batch`` output, so "re-run inference" must reproduce them. The
ML summary tables (confusion, class_metrics, metrics) come from ``startrack.ml.metrics``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from startrack import grid
from startrack.labels import normalize_subclass, within_one_subtype
from startrack.warehouse.schema import SPECTRA, SPECTRA_INDEX, STARS
from startrack.warehouse.store import Warehouse

log = logging.getLogger(__name__)

SUBCLASSES = ("A0", "F5", "F9", "G2", "K3", "K5", "M0V", "M2", "M5", "WD", "Carbon")
N_STARS = 300
N_SPECTRA = 60

TOPK = pa.list_(pa.struct([("label", pa.string()), ("prob", pa.float64())]))
PREDICTIONS = pa.schema(
    [
        ("plate", pa.int32()), ("mjd", pa.int32()), ("fiberid", pa.int32()),
        ("star_id", pa.string()), ("model_version", pa.string()), ("branch", pa.string()),
        ("label", pa.string()), ("prob", pa.float64()), ("topk", TOPK), ("actual", pa.string()),
        ("correct", pa.bool_()), ("within_one", pa.bool_()), ("split", pa.string()),
        ("run_id", pa.string()), ("scored_at", pa.timestamp("us", tz="UTC")),
    ]
)  # fmt: skip
MODELS = pa.schema(
    [
        ("version", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
        ("path", pa.string()), ("is_current", pa.bool_()), ("labels", pa.string()),
        ("params", pa.string()), ("data_snapshot", pa.string()), ("code_version", pa.string()),
        ("train_seconds", pa.float64()), ("summary", pa.string()),
    ]
)  # fmt: skip
SCORING_RUNS = pa.schema(
    [
        ("run_id", pa.string()), ("model_version", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")), ("finished_at", pa.timestamp("us", tz="UTC")),
        ("stars_scored", pa.int64()), ("stars_skipped", pa.int64()), ("full", pa.bool_()),
        ("status", pa.string()), ("seconds", pa.float64()),
    ]
)  # fmt: skip


# ----------------------------------------------------------------------------- ETL part
def _synthetic_etl(root: Path, seed: int = 1) -> None:
    """Stars + one spectrum part + index, written with the store's Writer (ETL fallback)."""
    from startrack.dashboard.overlay import template_on_grid

    rng = np.random.default_rng(seed)
    grid.wavelength()
    n = N_STARS
    plates = rng.integers(300, 3000, n)
    mjds = rng.integers(51600, 55000, n)
    fibers = rng.integers(1, 640, n)
    ids = pd.DataFrame({"plate": plates, "mjd": mjds, "fiberid": fibers}).drop_duplicates()
    subclass = rng.choice(SUBCLASSES, len(ids))
    labels = [normalize_subclass(s) for s in subclass]
    stars = pd.DataFrame(
        {
            "plate": ids["plate"].to_numpy(np.int32),
            "mjd": ids["mjd"].to_numpy(np.int32),
            "fiberid": ids["fiberid"].to_numpy(np.int32),
        }
    )
    stars["star_id"] = [
        f"{p:04d}-{m:05d}-{f:04d}"
        for p, m, f in stars[["plate", "mjd", "fiberid"]].itertuples(index=False)
    ]
    stars["specobjid"] = [str(1_000_000 + i) for i in range(len(stars))]
    stars["ra"] = rng.uniform(0, 360, len(stars))
    stars["dec"] = rng.uniform(-10, 70, len(stars))
    stars["class"] = "STAR"
    stars["subclass"] = subclass
    stars["label"] = [lab.label for lab in labels]
    stars["label_family"] = [lab.family for lab in labels]
    stars["spectral_type"] = [lab.spectral_type for lab in labels]
    stars["luminosity_class"] = [lab.luminosity_class for lab in labels]
    stars["z"] = rng.normal(0, 1e-4, len(stars))
    stars["zerr"] = 1e-5
    stars["snr"] = rng.lognormal(2.5, 0.7, len(stars))
    g_r = np.array(
        [{"A": 0.0, "F": 0.3, "G": 0.45, "K": 0.8, "M": 1.4}.get(s[0], 0.1) for s in subclass]
    )
    r = rng.uniform(15, 20, len(stars))
    mags = {"u": r + 2.2 * g_r + 1.0, "g": r + g_r, "r": r, "i": r - 0.4 * g_r, "z": r - 0.6 * g_r}
    for band, value in mags.items():
        stars[f"mag_{band}"] = value + rng.normal(0, 0.03, len(stars))
        stars[f"magerr_{band}"] = 0.03
    stars["elodie_sptype"] = None
    stars["has_spectrum"] = False
    stars["source"] = "fixture"
    stars["ingest_run"] = "fixture"
    spec_rows = rng.choice(len(stars), N_SPECTRA, replace=False)
    stars.loc[spec_rows, "has_spectrum"] = True
    stars.loc[spec_rows[:5], "elodie_sptype"] = "F8"

    with Warehouse(root).writer(command="fixture ingest") as w:
        records = []
        for row in sorted(spec_rows):
            star = stars.iloc[row]
            template = template_on_grid(star["label"])
            start, end = int(grid.pixel_of(np.log10(3810.0))), int(grid.pixel_of(np.log10(9190.0)))
            flux = np.full(grid.NPIX, np.nan, np.float32)
            ivar = np.zeros(grid.NPIX, np.float32)
            base = np.nan_to_num(template, nan=1.0) if template is not None else np.ones(grid.NPIX)
            base = base / np.nanmedian(base[start:end]) * 10 ** (-0.4 * (star["mag_r"] - 22.5)) * 3
            sigma = np.abs(base) / max(float(star["snr"]), 1.0) + 1e-3
            flux[start:end] = base[start:end] + rng.normal(0, sigma[start:end])
            ivar[start:end] = 1.0 / sigma[start:end] ** 2
            mask = np.ones(grid.NPIX, bool)
            mask[start:end] = False
            cut = rng.integers(start, end - 40)
            mask[cut : cut + 25] = True  # a bad-column run
            ivar[mask] = 0
            norm = float(np.median(flux[~mask]))
            records.append(
                {
                    **{k: star[k] for k in ("plate", "mjd", "fiberid", "star_id")},
                    "flux": flux, "ivar": ivar, "mask": mask, "norm": norm,
                    "norm_method": "median", "pix_start": start, "pix_end": end,
                    "exact_shift": True, "snr_median": float(star["snr"]),
                    "source": "fixture", "ingest_run": "fixture",
                }
            )  # fmt: skip
        part = w.new_spectra_part(0)
        table = pa.Table.from_pylist(records, schema=SPECTRA)
        pq.write_table(table, part, row_group_size=32, compression="zstd")
        w.add_spectra_part(part)
        index = pd.DataFrame(
            {
                "plate": table.column("plate").to_numpy(),
                "mjd": table.column("mjd").to_numpy(),
                "fiberid": table.column("fiberid").to_numpy(),
                "star_id": table.column("star_id").to_pylist(),
                "file": part.relative_to(root).as_posix(),
                "row_group": np.arange(len(records)) // 32,
                "row": np.arange(len(records)) % 32,
            }
        )
        w.put_table(
            "spectra_index", pa.Table.from_pandas(index, schema=SPECTRA_INDEX, preserve_index=False)
        )
        w.put_table("stars", pa.Table.from_pandas(stars, schema=STARS, preserve_index=False))
        now = datetime.now(UTC)
        w.put_table(
            "rejects",
            pa.table({"run_id": ["fixture"], "source": ["spectra/bad.fits"],
                      "item": ["spec-0001-51000-0001.fits"], "reason": ["truncated FITS file"],
                      "at": pa.array([now], pa.timestamp("us", tz="UTC"))}),
        )  # fmt: skip


def _real_etl(root: Path, work: Path) -> bool:
    """simulate_survey + ingest, when the ETL can run here; False when it cannot."""
    try:
        from startrack.etl.ingest import ingest
        from startrack.etl.simulate import simulate_survey

        out = work / "survey"
        simulate_survey(out, n_stars=400, n_spectra=120, seed=1, templates=None,
                        labels_from=None, workers=1)  # fmt: skip
        ingest(Warehouse(root), catalogs=[out / "catalog.csv"], spectra=[out / "spectra"],
               workers=1, progress=False)  # fmt: skip
        return True
    except Exception as exc:  # the ETL is another part's: fall back, but say so
        log.warning(
            "real ETL unavailable for the dashboard fixture (%s); using the synthetic one", exc
        )
        return False


# ----------------------------------------------------------------------------- ML part
def _write_ml(root: Path) -> str:
    """A seeded untrained model artifact, its predictions, and the metrics tables."""
    import torch

    from startrack.ml.artifact import save_artifact
    from startrack.ml.features import N_FEATURES, Standardizer, split_of
    from startrack.ml.inference import Spectra, predict_batch
    from startrack.ml.metrics import evaluate
    from startrack.ml.model import ModelConfig, StarClassifier

    wh = Warehouse(root)
    snap = wh.require_current()
    stars = snap.table("stars").to_pandas()
    classes = sorted(stars["label"].dropna().unique().tolist())
    torch.manual_seed(0)
    model = StarClassifier(ModelConfig(n_classes=len(classes)))
    stats = Standardizer(np.zeros(N_FEATURES, np.float32), np.ones(N_FEATURES, np.float32))
    meta = {"labels": classes, "features": {"stats": stats.to_dict()}, "temperatures": {}}
    # spectra for predict_batch, aligned with the stars frame
    spec = pa.concat_tables(
        pq.read_table(f, columns=["star_id", "flux", "ivar", "mask", "norm"])
        for f in snap.spectra_files
    )
    pos = {sid: i for i, sid in enumerate(spec.column("star_id").to_pylist())}

    def matrix(name: str, dtype) -> np.ndarray:
        col = spec.column(name).combine_chunks()
        return (
            col.flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(len(col), grid.NPIX)
        )

    spectra = Spectra(
        matrix("flux", np.float32), matrix("ivar", np.float32), matrix("mask", bool),
        spec.column("norm").to_numpy().astype(np.float32),
        np.array([pos.get(s, -1) for s in stars["star_id"]]),
    )  # fmt: skip
    pred = predict_batch(model, meta, stars, spectra, topk=5)
    version = "m20250101T000000Z-fixture"
    run_id = "score-fixture"
    scored_at = datetime.now(UTC)
    rows = []
    splits = [split_of(s) for s in stars["star_id"]]
    for i, star in enumerate(stars.itertuples(index=False)):
        for branch in ("dense", "lstm", "fusion"):
            label = pred[f"{branch}_label"].iloc[i]
            if pd.isna(label):
                continue
            actual = star.label
            rows.append(
                {
                    "plate": star.plate, "mjd": star.mjd, "fiberid": star.fiberid,
                    "star_id": star.star_id, "model_version": version, "branch": branch,
                    "label": label, "prob": float(pred[f"{branch}_prob"].iloc[i]),
                    "topk": [{"label": a, "prob": b} for a, b in pred[f"{branch}_topk"].iloc[i]],
                    "actual": actual, "correct": None if actual is None else label == actual,
                    "within_one": None if actual is None else within_one_subtype(actual, label),
                    "split": splits[i], "run_id": run_id, "scored_at": scored_at,
                }
            )  # fmt: skip
    predictions = pd.DataFrame(rows)
    tables: dict[str, list[pd.DataFrame]] = {"metrics": [], "class_metrics": [], "confusion": []}
    rng = np.random.default_rng(3)
    snr = dict(zip(stars["star_id"], stars["snr"], strict=True))
    for branch in ("dense", "lstm", "fusion", "baseline_hgb"):
        source = predictions[
            predictions["branch"] == ("fusion" if branch.startswith("b") else branch)
        ]
        source = source[source["actual"].notna()]
        y_pred = source["label"].to_numpy(object).copy()
        if branch.startswith("baseline"):  # a different, plausible answer per star
            y_pred = np.where(rng.random(len(y_pred)) < 0.5, source["actual"], y_pred)
        for split in ("test", "all"):
            sel = (
                (source["split"] == "test").to_numpy()
                if split == "test"
                else np.ones(len(source), bool)
            )
            ev = evaluate(source["actual"].to_numpy(object)[sel], y_pred[sel],
                          snr=source["star_id"].map(snr).to_numpy()[sel])  # fmt: skip
            for name, df in ev.to_tables(version, branch, split).items():
                tables[name].append(df)
    models = pd.DataFrame(
        [{"version": version, "created_at": scored_at, "path": f"models/{version}",
          "is_current": True, "labels": json.dumps(classes), "params": "{}",
          "data_snapshot": snap.id, "code_version": "fixture", "train_seconds": 0.0,
          "summary": "{}"}]
    )  # fmt: skip
    scoring = pd.DataFrame(
        [{"run_id": run_id, "model_version": version, "started_at": scored_at,
          "finished_at": scored_at, "stars_scored": len(stars), "stars_skipped": 0,
          "full": True, "status": "ok", "seconds": 1.0}]
    )  # fmt: skip
    with wh.writer(command="fixture score") as w:
        save_artifact(w.model_dir(version), model, {**meta, "version": version})
        w.put_table("models", pa.Table.from_pandas(models, schema=MODELS, preserve_index=False))
        w.put_table(
            "predictions",
            pa.Table.from_pandas(predictions, schema=PREDICTIONS, preserve_index=False),
        )
        w.put_table(
            "scoring_runs", pa.Table.from_pandas(scoring, schema=SCORING_RUNS, preserve_index=False)
        )
        for name, parts in tables.items():
            w.put_table(name, pd.concat(parts, ignore_index=True))
    return version


def build_dashboard_warehouse(root: Path, work: Path, real_etl: bool = True) -> Path:
    """The whole fixture: ETL tables (real pipeline if it runs), then model + ML tables."""
    if not (real_etl and _real_etl(root, work)):
        _synthetic_etl(root)
    _write_ml(root)
    return root


@pytest.fixture(scope="session")
def dashboard_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("dashboard")
    return build_dashboard_warehouse(work / "wh", work)


@pytest.fixture(scope="session")
def dashboard_app(dashboard_warehouse: Path):
    """The Dash app over the fixture warehouse (one per process: Dash Pages are global)."""
    from startrack.dashboard.serve import create_app

    return create_app(dashboard_warehouse)
