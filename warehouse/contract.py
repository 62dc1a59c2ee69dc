"""The warehouse contract: every table a snapshot holds, its Arrow schema, what each column means.

This module is the one definition. Writers go through :func:`conform` (``Writer.put_table``
and ``Writer.put_parquet`` call it), every published snapshot holds every table here (empty
where nothing was written), and the README's schema section and docs/ARCHITECTURE.md's table
list are generated from it::

    python -m startrack.warehouse.contract --markdown        # print the README section
    python -m startrack.warehouse.contract --write           # rewrite both docs in place

``tests/test_contract.py`` fails when the docs differ from this module.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from startrack import grid
from startrack.vocabulary import BANDS

if TYPE_CHECKING:  # pandas is imported only when a writer hands over a DataFrame: the ETL's
    import pandas as pd  # spectrum workers import this module and never need it

UTC_TIME = pa.timestamp("us", tz="UTC")
TOPK = pa.list_(pa.struct([("label", pa.string()), ("prob", pa.float64())]))


class ContractError(ValueError):
    """A writer tried to store a table or column the contract does not declare (a bug)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    note: str = ""

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.type) for c in self.columns])


def _c(name: str, type_: pa.DataType, doc: str) -> Column:
    return Column(name, type_, doc)


_FIRST_A = 10**grid.LOGLAM0
_LAST_A = 10 ** (grid.LOGLAM0 + grid.DLOGLAM * (grid.NPIX - 1))

_ID = (
    _c("plate", pa.int32(), "SDSS plate number"),
    _c("mjd", pa.int32(), "MJD of the observation (days)"),
    _c("fiberid", pa.int32(), "fiber on the plate (1-1000)"),
    _c("star_id", pa.string(), "`PPPP-MMMMM-FFFF` (startrack.star_id; e.g. `2942-54521-0124`)"),
)
_ML_KEY = (
    _c("model_version", pa.string(), "`models.version`"),
    _c(
        "branch",
        pa.string(),
        "`dense`, `lstm`, `fusion`, or a baseline: `baseline_hgb`, `baseline_pca_lr`, "
        "`baseline_template`",
    ),
    _c(
        "split",
        pa.string(),
        "`test` (held-out stars), `test_spectra` (those with a spectrum: the branches on "
        "equal footing) or `all` (every labelled star, training included)",
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "stars",
            "one row per (plate, mjd, fiberid)",
            (
                *_ID,
                _c("specobjid", pa.string(), "SDSS SpecObjID (64-bit, kept as text)"),
                _c("ra", pa.float64(), "right ascension, degrees (J2000)"),
                _c("dec", pa.float64(), "declination, degrees (J2000)"),
                _c("class", pa.string(), "SDSS class (`STAR`)"),
                _c("subclass", pa.string(), "the raw SDSS subclass, as given (`K3`, `M2V`)"),
                _c("label", pa.string(), "normalized label (`K3`, `M2`, `WD`, `Carbon`, `L5`)"),
                _c("label_family", pa.string(), "`MK`, `WD`, `Carbon`, `CV`, `L`, `T`, `other`"),
                _c(
                    "spectral_type",
                    pa.float64(),
                    "numeric MK type: O0=0, B0=10, A0=20 ... M9=69; NULL outside MK",
                ),
                _c("luminosity_class", pa.string(), "`V`, `III` ... when the raw string has one"),
                _c("z", pa.float64(), "redshift (dimensionless; stars: v/c)"),
                _c("zerr", pa.float64(), "redshift error"),
                _c("snr", pa.float64(), "median S/N per pixel of the spectrum (`snMedian`)"),
                *[_c(f"mag_{b}", pa.float64(), f"{b} AB magnitude (PSF preferred)") for b in BANDS],
                *[_c(f"magerr_{b}", pa.float64(), f"error of mag_{b}") for b in BANDS],
                _c("elodie_sptype", pa.string(), "ELODIE type of the best-matching ELODIE star"),
                _c("has_spectrum", pa.bool_(), "a spectrum of this star is in `spectra`"),
                _c("source", pa.string(), "input file the row's values came from"),
                _c("ingest_run", pa.string(), "`ingest_runs.run_id` that last changed the row"),
            ),
        ),
        Table(
            "spectra",
            "one row per spectrum (a view over the part files `<warehouse>/spectra/*.parquet`)",
            (
                *_ID,
                _c(
                    "flux",
                    pa.list_(pa.float32(), grid.NPIX),
                    "1e-17 erg/s/cm²/Å on the common grid; NaN where not covered",
                ),
                _c(
                    "ivar",
                    pa.list_(pa.float32(), grid.NPIX),
                    "inverse variance of flux; 0 where masked",
                ),
                _c(
                    "mask",
                    pa.list_(pa.bool_(), grid.NPIX),
                    "true = unusable (ivar 0, SDSS and_mask set, non-finite, not covered)",
                ),
                _c("norm", pa.float32(), "median flux of unmasked pixels (normalized = flux/norm)"),
                _c("norm_method", pa.string(), "how `norm` was computed"),
                _c("pix_start", pa.int32(), "first covered grid pixel"),
                _c("pix_end", pa.int32(), "one past the last covered grid pixel"),
                _c(
                    "exact_shift",
                    pa.bool_(),
                    "the input sat on the SDSS 1e-4 dex lattice: original pixels, unchanged",
                ),
                _c("snr_median", pa.float32(), "median flux·sqrt(ivar) over unmasked pixels"),
                _c("source", pa.string(), "input file"),
                _c("ingest_run", pa.string(), "`ingest_runs.run_id`"),
            ),
            note=(
                f"The common grid (startrack.grid): `log10(λ/Å) = {grid.LOGLAM0:.4f} + "
                f"{grid.DLOGLAM:g}·k`, k = 0 … {grid.NPIX - 1} "
                f"({_FIRST_A:.1f} – {_LAST_A:.1f} Å, vacuum, "
                f"{grid.C_KMS * grid.DLOGLAM * 2.302585:.0f} km/s per pixel), a superset of "
                "SDSS-I/II (3800–9200 Å) and BOSS (3600–10400 Å) coverage. SDSS co-adds are "
                "sampled on this very lattice, so placing them is an integer shift: the original "
                "wavelengths and fluxes are `grid[pix_start:pix_end]` and "
                "`flux[pix_start:pix_end]`. Inputs off the lattice are linearly interpolated "
                "with inverse variance propagated (`exact_shift = false`)."
            ),
        ),
        Table(
            "spectra_index",
            "where each spectrum lives (fast single-spectrum reads)",
            (
                *_ID,
                _c("file", pa.string(), "part file, relative to the warehouse"),
                _c("row_group", pa.int32(), "row group in that file"),
                _c("row", pa.int32(), "row inside the row group"),
            ),
        ),
        Table(
            "ingest_runs",
            "one row per ingest",
            (
                _c("run_id", pa.string(), "the ingest's id"),
                _c("started_at", UTC_TIME, "start (UTC)"),
                _c("finished_at", UTC_TIME, "end (UTC)"),
                _c("command", pa.string(), "the command that ran it"),
                _c("inputs", pa.string(), "catalogs and spectra given (JSON)"),
                _c("catalog_rows", pa.int64(), "catalog rows read"),
                _c("spectra_files", pa.int64(), "spectrum files seen"),
                _c("spectra_added", pa.int64(), "spectra added"),
                _c("spectra_skipped", pa.int64(), "spectra already in the warehouse"),
                _c("stars_added", pa.int64(), "new stars"),
                _c("stars_updated", pa.int64(), "stars whose values changed"),
                _c("stars_total", pa.int64(), "stars after the run"),
                _c("rejects", pa.int64(), "rows added to `rejects`"),
                _c("seconds", pa.float64(), "wall time"),
                _c("status", pa.string(), "`ok`, `ok with rejects` or `failed: ...`"),
            ),
        ),
        Table(
            "rejects",
            "every input item that was not ingested, and why",
            (
                _c("run_id", pa.string(), "`ingest_runs.run_id`"),
                _c("source", pa.string(), "input file or folder"),
                _c("item", pa.string(), "`file`, `folder`, `row N`, `rows A-B`"),
                _c("reason", pa.string(), "why, in one line"),
                _c("at", UTC_TIME, "when (UTC)"),
            ),
        ),
        Table(
            "models",
            "one row per trained model",
            (
                _c("version", pa.string(), "model version (artifact folder name)"),
                _c("created_at", UTC_TIME, "when it was published (UTC)"),
                _c("path", pa.string(), "artifact folder, relative to the warehouse"),
                _c("data_snapshot", pa.string(), "snapshot it was trained on"),
                _c("labels", pa.string(), "classes it predicts (JSON list)"),
                _c("n_classes", pa.int64(), "number of classes"),
                _c("n_train", pa.int64(), "training stars"),
                _c("n_train_spectra", pa.int64(), "training stars with a spectrum"),
                _c("n_val", pa.int64(), "validation stars"),
                _c("val_fusion_accuracy", pa.float64(), "validation accuracy, fusion"),
                _c("val_dense_accuracy", pa.float64(), "validation accuracy, dense"),
                _c("val_lstm_accuracy", pa.float64(), "validation accuracy, lstm"),
                _c("best_epoch", pa.int64(), "epoch whose weights were kept"),
                _c("epochs_run", pa.int64(), "epochs trained"),
                _c("train_seconds", pa.float64(), "training wall time"),
                _c("hyperparameters", pa.string(), "training configuration (JSON)"),
                _c("temperatures", pa.string(), "calibration temperature per head (JSON)"),
                _c("code_version", pa.string(), "package version and git commit (JSON)"),
                _c("is_current", pa.bool_(), "the model `startrack score` uses (exactly one)"),
            ),
        ),
        Table(
            "predictions",
            "one row per star and branch, for the current model",
            (
                *_ID,
                _c("model_version", pa.string(), "`models.version`"),
                _c(
                    "branch",
                    pa.string(),
                    "`dense` (stars with at least one colour: two neighbouring bands), `lstm` "
                    "(stars with a spectrum) or `fusion` (either); a branch without its input "
                    "has no row, so it never answers its training prior",
                ),
                _c("label", pa.string(), "predicted normalized label"),
                _c("prob", pa.float64(), "its calibrated probability (0-1)"),
                _c("topk", TOPK, "the 5 most probable labels, best first"),
                _c(
                    "spectral_type",
                    pa.float64(),
                    "continuous MK type (posterior mean; for spectra near the top class, "
                    "ml/quality.py); NULL when most probability is outside MK",
                ),
                _c("spectral_type_err", pa.float64(), "its posterior std, in subtypes"),
                _c(
                    "flags",
                    pa.list_(pa.string()),
                    "why not to trust it (ml/quality.py; empty: no warning; the same for every "
                    "branch of a star): `low_snr` (median S/N < 5), `heavy_masking` (> 25 % of "
                    "the covered spectrum masked), `branches_disagree` (dense and lstm both "
                    "answered, and their types are > 5 subtypes apart, or one MK and one not), "
                    "`low_confidence` (fusion probability < 0.3), `out_of_distribution` (line "
                    "profile unlike every "
                    "training class, above the 99th percentile of validation stars)",
                ),
                _c("actual", pa.string(), "`stars.label` when scored (NULL: no SDSS label)"),
                _c("correct", pa.bool_(), "label = actual"),
                _c("within_one", pa.bool_(), "label within one subtype of actual"),
                _c("split", pa.string(), "`train`, `val` or `test` (the star-id hash split)"),
                _c("ingest_run", pa.string(), "the star row's ingest run when scored"),
                _c("run_id", pa.string(), "`scoring_runs.run_id`"),
                _c("scored_at", UTC_TIME, "when (UTC)"),
            ),
        ),
        Table(
            "metrics",
            "one row per model version, branch, split, metric and S/N bin",
            (
                *_ML_KEY,
                _c(
                    "metric",
                    pa.string(),
                    "`accuracy`, `macro_f1`, `within_one`, `ece`, `type_median_error`, ... "
                    "(`type_*`: the continuous type against the SDSS label's type; "
                    "`own_type_*`: against each star's own MK type, ELODIE_SPTYPE)",
                ),
                _c(
                    "snr_bin",
                    pa.string(),
                    "NULL overall, else `0-5`, `5-10`, `10-20`, `20-40`, `40+`",
                ),
                _c("value", pa.float64(), "the metric's value"),
                _c("n", pa.int64(), "stars it is computed on"),
            ),
        ),
        Table(
            "class_metrics",
            "one row per model version, branch, split and label",
            (
                *_ML_KEY,
                _c("label", pa.string(), "the SDSS label"),
                _c("precision", pa.float64(), "precision (0-1)"),
                _c("recall", pa.float64(), "recall (0-1)"),
                _c("f1", pa.float64(), "F1 (0-1)"),
                _c("support", pa.int64(), "stars with this actual label"),
            ),
        ),
        Table(
            "confusion",
            "non-zero confusion cells per model version, branch and split",
            (
                *_ML_KEY,
                _c("actual", pa.string(), "SDSS label"),
                _c("predicted", pa.string(), "predicted label"),
                _c("n", pa.int64(), "stars in the cell"),
            ),
        ),
        Table(
            "prediction_history",
            "one row per star and scored model version",
            (
                *_ID[3:],
                *_ID[:3],
                _c("model_version", pa.string(), "`models.version`"),
                _c("split", pa.string(), "`train`, `val` or `test` (the star-id hash split)"),
                *[
                    _c(f"{b}_label", pa.string(), f"the {b} head's prediction" + note)
                    for b, note in (
                        ("fusion", ""),
                        ("dense", ""),
                        ("lstm", " (NULL without a spectrum)"),
                    )
                ],
                *[
                    _c(f"{b}_prob", pa.float32(), "its calibrated probability")
                    for b in ("fusion", "dense", "lstm")
                ],
                _c(
                    "spectral_type",
                    pa.float32(),
                    "the fusion head's continuous MK type (NULL outside MK)",
                ),
                _c(
                    "scoring_run",
                    pa.string(),
                    "`scoring_runs.run_id` of the run that scored the row",
                ),
            ),
            note=(
                "What every model version answered for every star it scored, kept when later "
                "versions are scored (`predictions` holds the current model only); scoring "
                "rewrites it in one DuckDB pass (ml/prediction_history.py), sorted by star, then "
                "version."
            ),
        ),
        Table(
            "scoring_runs",
            "one row per scoring run",
            (
                _c("run_id", pa.string(), "the scoring run's id"),
                _c("model_version", pa.string(), "`models.version` it scored with"),
                _c("snapshot_id", pa.string(), "snapshot whose stars it scored"),
                _c("mode", pa.string(), "`incremental` or `full`"),
                _c("full", pa.bool_(), "mode = `full`"),
                _c("started_at", UTC_TIME, "start (UTC)"),
                _c("finished_at", UTC_TIME, "end (UTC)"),
                _c("stars_total", pa.int64(), "stars in the snapshot"),
                _c("stars_scored", pa.int64(), "stars scored by this run"),
                _c("stars_skipped", pa.int64(), "stars whose predictions were still current"),
                _c("spectra_scored", pa.int64(), "scored stars with a spectrum"),
                _c("seconds", pa.float64(), "wall time"),
                _c("stars_per_second", pa.float64(), "throughput"),
                _c("status", pa.string(), "`ok`"),
            ),
        ),
    )
}

#: Tables kept as native DuckDB tables in a snapshot (``spectra`` is a view over part files).
STORED_TABLES = tuple(name for name in TABLES if name != "spectra")

STARS = TABLES["stars"].schema
SPECTRA = TABLES["spectra"].schema
SPECTRA_INDEX = TABLES["spectra_index"].schema
INGEST_RUNS = TABLES["ingest_runs"].schema
REJECTS = TABLES["rejects"].schema
PREDICTIONS = TABLES["predictions"].schema


def schema(name: str) -> pa.Schema:
    """The declared Arrow schema of one table."""
    try:
        return TABLES[name].schema
    except KeyError:
        raise ContractError(
            f"table {name!r} is not declared in startrack/warehouse/contract.py"
        ) from None


def conform(name: str, table: pa.Table | pd.DataFrame) -> pa.Table:
    """``table`` in the declared column order and types; missing columns become NULL.

    A column the contract does not declare, or a value that does not fit its declared type,
    raises :class:`ContractError`: what reaches a snapshot is always what the docs say.
    """
    target = schema(name)
    if not isinstance(table, pa.Table):  # a pandas DataFrame
        table = pa.Table.from_pandas(table, preserve_index=False)
    extra = [c for c in table.column_names if c not in target.names]
    if extra:
        raise ContractError(
            f"table {name!r}: columns {extra} are not declared in startrack/warehouse/contract.py"
        )
    columns = []
    for field in target:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type.equals(field.type):
            columns.append(column)
            continue
        try:
            # timestamps: pandas carries nanoseconds, the contract microseconds
            columns.append(column.cast(field.type, safe=not pa.types.is_timestamp(field.type)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ContractError(
                f"table {name!r}: column {field.name!r} ({column.type}) "
                f"does not fit {field.type}: {exc}"
            ) from None
    return pa.Table.from_arrays(columns, schema=target)


def check_file_schema(name: str, file_schema: pa.Schema) -> None:
    """Raise ContractError when a Parquet file written outside :func:`conform` differs."""
    target = schema(name)
    got = pa.schema([f.remove_metadata() for f in file_schema]).remove_metadata()
    if [(f.name, f.type) for f in got] != [(f.name, f.type) for f in target]:
        diff = sorted({str(f) for f in got} ^ {str(f) for f in target})
        raise ContractError(f"table {name!r} file differs from the contract: {diff}")


# ----------------------------------------------------------------------------- docs
def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_fixed_size_list(t):
        return f"{_sql_type(t.value_type)}[{t.list_size}]"
    if pa.types.is_list(t):
        return f"{_sql_type(t.value_type)}[]"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f"{f.name} {_sql_type(f.type)}" for f in t) + ")"
    return {
        pa.int32(): "INTEGER",
        pa.int64(): "BIGINT",
        pa.float32(): "FLOAT",
        pa.float64(): "DOUBLE",
        pa.string(): "VARCHAR",
        pa.bool_(): "BOOLEAN",
        UTC_TIME: "TIMESTAMPTZ",
    }[t]


def markdown(heading: str = "###") -> str:
    """The schema section: one table of columns per warehouse table."""
    out = []
    for t in TABLES.values():
        out += [f"{heading} `{t.name}` — {t.doc}", "| column | type | meaning |", "|---|---|---|"]
        out += [f"| {c.name} | {_sql_type(c.type)} | {c.doc} |" for c in t.columns]
        if t.note:
            out += ["", t.note]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def table_list() -> str:
    """One line per table, for docs/ARCHITECTURE.md."""
    return "".join(
        f"- `{t.name}` ({t.doc}): {', '.join(c.name for c in t.columns)}.\n"
        for t in TABLES.values()
    )


BEGIN = "<!-- contract:begin (generated: python -m startrack.warehouse.contract --write) -->"
END = "<!-- contract:end -->"
ROOT = Path(__file__).resolve().parents[1]
#: Generated sections: file -> how its section is rendered.
DOCS = {"README.md": markdown, "docs/ARCHITECTURE.md": table_list}


def render_into(text: str, section: str) -> str:
    """``text`` with the part between the contract markers replaced by ``section``."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ContractError("the contract markers are missing")
    return f"{head}{BEGIN}\n{section}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m startrack.warehouse.contract",
        description="print or write the warehouse schema docs generated from the contract",
    )
    parser.add_argument("--markdown", action="store_true", help="print the README section")
    parser.add_argument("--write", action="store_true", help="rewrite the sections in the docs")
    args = parser.parse_args(argv)
    if args.write:
        for rel, render in DOCS.items():
            path = ROOT / rel
            path.write_text(render_into(path.read_text(), render()))
            print(f"wrote {path}")
    else:
        sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
