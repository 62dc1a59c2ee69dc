"""Spectroscopic targeting: the spectra cover every MK type, not just the common labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from startrack.labels import normalize_subclass
from startrack.simulator.simulate import DEFAULT_SUBCLASS_COUNTS, plan_survey
from startrack.simulator.targeting import (
    mk_cell_widths,
    selection_weights,
    spectroscopic_shares,
    weighted_sample,
)


def _types(subclasses: pd.Series) -> np.ndarray:
    return np.array([normalize_subclass(s).spectral_type or np.nan for s in subclasses])


def test_each_type_stands_for_half_the_way_to_its_neighbours():
    assert mk_cell_widths(np.array([20.0, 32.0, 35.0])).tolist() == [12.0, 7.5, 3.0]
    assert mk_cell_widths(np.array([42.0])).tolist() == [1.0]


def test_type_targeting_spreads_spectra_evenly_over_the_mk_sequence():
    shares = spectroscopic_shares(DEFAULT_SUBCLASS_COUNTS, "types")
    assert sum(shares.values()) == pytest.approx(1.0)
    # per subtype of the MK stretch it stands for, B6 (68 stars per 30,000) gets as much
    # as A0 (6,049, with A0p beside it at the same type)
    a0_per_subtype = (shares["A0"] + shares["A0p"]) / 6.5
    assert shares["B6"] / 4.75 == pytest.approx(a0_per_subtype)
    assert shares["A0p"] / shares["A0"] == pytest.approx(177 / 6049)
    # off the sequence: the catalog share
    total = sum(DEFAULT_SUBCLASS_COUNTS.values())
    assert shares["WD"] == pytest.approx(250 / total)
    random = spectroscopic_shares(DEFAULT_SUBCLASS_COUNTS, "random")
    assert random["A0"] == pytest.approx(6049 / total)


def test_type_targeting_gives_rare_types_spectra_and_random_keeps_the_label_mix():
    by_type = plan_survey(20_000, 4_000, 11, targeting="types")[0]
    at_random = plan_survey(20_000, 4_000, 11)[0]
    for plan in (by_type, at_random):
        assert plan["has_spectrum"].sum() == 4_000
    spec_t = _types(by_type.loc[by_type.has_spectrum, "subClass"])
    spec_r = _types(at_random.loc[at_random.has_spectrum, "subClass"])
    early_b_t, early_b_r = (np.sum((t >= 10) & (t < 19)) for t in (spec_t, spec_r))  # B0-B8
    assert early_b_t > 10 * max(early_b_r, 1)
    assert np.sum(spec_t == 20) < 0.6 * np.sum(spec_r == 20)  # fewer A0 spectra
    # photometry-only stars keep SDSS's label mix: A0 the commonest
    phot = by_type.loc[~by_type.has_spectrum, "subClass"].value_counts()
    assert phot.index[0] == "A0"


def test_real_label_tables_keep_real_labels_and_target_rare_ones(real_labels, real_templates):
    table = pd.read_csv(real_labels)
    plan, _ = plan_survey(3_000, 600, 4, real_templates, real_labels, targeting="types")
    merged = plan.merge(table, on=["plate", "mjd", "fiberID"], suffixes=("", "_real"))
    assert len(merged) == 3_000 and (merged.subClass == merged.subClass_real).all()
    spec = plan.loc[plan.has_spectrum, "subClass"]
    assert len(spec) == 600
    share_a0_spec = (spec == "A0").mean()
    share_a0_table = (table.subClass == "A0").mean()
    assert share_a0_spec < 0.6 * share_a0_table


def test_weighted_sample_draws_distinct_items_in_proportion_to_weight():
    rng = np.random.default_rng(0)
    weights = np.r_[np.full(1_000, 1.0), np.full(1_000, 9.0), np.zeros(10)]
    hits = np.zeros(weights.size)
    for _ in range(200):
        got = weighted_sample(rng, weights, 50)
        assert np.unique(got).size == 50
        hits[got] += 1
    assert hits[-10:].sum() == 0
    assert hits[1000:2010].sum() / hits[:1000].sum() == pytest.approx(9.0, rel=0.15)
    with pytest.raises(ValueError, match="only 2000"):
        weighted_sample(rng, weights, 2001)


def test_selection_weights_reach_the_shares_in_expectation():
    labels = np.array(["A0"] * 90 + ["B6"] * 10)
    w = selection_weights(labels, {"A0": 0.5, "B6": 0.5})
    assert w[labels == "A0"].sum() == pytest.approx(w[labels == "B6"].sum())


def test_a_bad_targeting_is_a_clear_error():
    with pytest.raises(ValueError, match="--targeting must be one of types, random"):
        plan_survey(10, 1, 1, targeting="even")


def test_simulate_cli_takes_targeting_and_refuses_an_unknown_one(tmp_path, capsys):
    import argparse

    from startrack.simulator.cli import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--out", str(tmp_path), "--stars", "400", "--spectra", "40", "--workers", "1"]
    assert parser.parse_args(base).targeting == "random"
    assert run(parser.parse_args([*base, "--targeting", "types"])) == 0
    catalog = pd.read_csv(tmp_path / "catalog.csv")
    assert len(list((tmp_path / "spectra").glob("spec-*.fits"))) == 40
    assert len(catalog) == 400
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--targeting", "even"])
    assert "invalid choice: 'even'" in capsys.readouterr().err


def test_more_spectra_than_real_rows_go_to_synthetic_stars_at_random(tmp_path):
    rows = [(300 + i, 51600 + i, 1 + i, name) for i, name in enumerate(["A0", "F5", "K3"] * 7)]
    table = pd.DataFrame(rows, columns=["plate", "mjd", "fiberID", "subClass"])
    path = tmp_path / "labels.csv"
    table.to_csv(path, index=False)
    plan, _ = plan_survey(200, 60, 3, labels_from=path, targeting="types")
    assert plan["has_spectrum"].sum() == 60
    real = plan.merge(table, on=["plate", "mjd", "fiberID"], suffixes=("", "_real"))
    assert len(real) == 21 and real["has_spectrum"].all()  # every real row has its spectrum
    assert (real.subClass == real.subClass_real).all()
    synthetic = plan[
        ~plan.set_index(["plate", "mjd", "fiberID"]).index.isin(
            real.set_index(["plate", "mjd", "fiberID"]).index
        )
    ]
    spec_at = np.flatnonzero(synthetic["has_spectrum"].to_numpy())
    assert len(spec_at) == 39 and spec_at.max() > 60  # spread over the synthetic stars
