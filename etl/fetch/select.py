"""Which catalog rows get a spectrum downloaded, reproducibly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from startrack.etl.fetch.download import Job
from startrack.sdss_urls import guess_run2d, normalize_run2d, sas_spec_lite_url, spec_name


def _col(df: pd.DataFrame, name: str) -> str | None:
    for c in df.columns:
        if c.lower() == name.lower():
            return c
    return None


def choose_spectra(catalog: pd.DataFrame, count: int | None, seed: int | None) -> pd.DataFrame:
    """``count`` rows (None = all): a seeded random sample with ``seed``, else the highest
    median S/N first (the spectra that teach a classifier the most), ties by specObjID."""
    cols = {k: _col(catalog, k) for k in ("plate", "mjd", "fiberID")}
    if None in cols.values():
        missing = [k for k, v in cols.items() if v is None]
        raise ValueError(f"the catalog has no {', '.join(missing)} column: cannot name spectra")
    df = catalog.dropna(subset=list(cols.values()))
    df = df.drop_duplicates(subset=list(cols.values()))
    if count is None or count >= len(df):
        return df
    if seed is not None:
        idx = np.random.default_rng(seed).choice(len(df), size=count, replace=False)
        return df.iloc[np.sort(idx)]
    sn = _col(df, "snMedian")
    if sn is None:
        return df.iloc[:count]
    order = df[sn].astype(float).fillna(-np.inf)
    return df.assign(_sn=order).sort_values("_sn", ascending=False, kind="stable").iloc[:count]


def jobs_for(rows: pd.DataFrame, release: int, sas_url: str) -> list[Job]:
    """One download job per row; run2d from the row, else from its specObjID or plate."""
    plate, mjd, fiber = (_col(rows, k) for k in ("plate", "mjd", "fiberID"))
    run_c, sid_c = _col(rows, "run2d"), _col(rows, "specObjID")
    jobs = []
    for rec in rows.to_dict("records"):
        p, m, f = int(rec[plate]), int(rec[mjd]), int(rec[fiber])
        run = rec.get(run_c) if run_c else None
        try:
            run = normalize_run2d(run) if run is not None and str(run) != "nan" else None
        except ValueError:
            run = None
        if run is None:
            run = guess_run2d(p, m, f, rec.get(sid_c) if sid_c else None, release)
        jobs.append(Job(spec_name(p, m, f), sas_spec_lite_url(p, m, f, run, release, sas_url)))
    return jobs
