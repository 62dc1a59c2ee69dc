"""Training targets at each star's own MK type (ml/targets.py), and the simulator writing
the type it drew as the star's ELODIE type, as SDSS's ELODIE_SPTYPE gives a real star's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from startrack.labels import spectral_type_of, spectral_types
from startrack.ml.targets import star_targets, star_types, type_targets

CLASSES = ["B9", "A0", "F2", "F5", "G2", "K1", "WD"]


def _mean_type(target: torch.Tensor) -> float:
    t = torch.as_tensor(spectral_types(CLASSES))
    mk = torch.isfinite(t)
    return float((target[mk] * t[mk]).sum() / target[mk].sum())


def test_a_star_between_two_subclasses_is_targeted_between_them_with_its_label_first():
    types = torch.as_tensor(spectral_types(CLASSES))
    y = torch.tensor([CLASSES.index("A0")])
    target = star_targets(y, torch.tensor([25.0]), types, share=0.0, sigma=2.0)[0]
    assert _mean_type(target) == pytest.approx(25.0)  # an A5 star says A5, not A0
    assert int(target.argmax()) == CLASSES.index("A0")  # and its class is still its label
    assert float(target[CLASSES.index("F2")]) == pytest.approx(5 / 12)
    smooth = star_targets(y, torch.tensor([25.0]), types, share=0.3, sigma=2.0)[0]
    assert float(smooth.sum()) == pytest.approx(1.0)
    assert abs(_mean_type(smooth) - 25.0) < 1.0
    assert int(smooth.argmax()) == CLASSES.index("A0")


def test_a_star_at_its_labels_type_and_off_mk_classes_keep_their_label_targets():
    types = torch.as_tensor(spectral_types(CLASSES))
    y = torch.tensor([CLASSES.index("G2"), CLASSES.index("WD"), CLASSES.index("F5")])
    t = torch.tensor([42.0, 30.0, float("nan")])
    out = star_targets(y, t, types, share=0.3, sigma=2.0)
    torch.testing.assert_close(out[0], type_targets(CLASSES, 0.3, 2.0)[CLASSES.index("G2")])
    assert int(out[0].argmax()) == CLASSES.index("G2") and float(out[0].max()) > 0.7
    torch.testing.assert_close(out[1], torch.eye(len(CLASSES))[CLASSES.index("WD")])
    torch.testing.assert_close(out[2], torch.eye(len(CLASSES))[CLASSES.index("F5")])


def test_own_types_are_clipped_to_the_interval_the_label_is_nearest_to():
    y = np.array([CLASSES.index(c) for c in ("A0", "A0", "G2", "K1", "WD", "F5")] + [-1])
    own = pd.Series(["A3V", "F6V", None, "K0III", "DA", "unknown", "F5V"])
    t = star_types(y, own, CLASSES)
    assert t[0] == 23.0  # inside A0's interval (19.5-26): its own type
    assert t[1] == 26.0  # an 'F6' A0 star: ELODIE and SDSS disagree; the label's edge
    assert t[2] == 42.0  # no own type: the label's
    assert t[3] == 50.0  # a K0 giant labelled K1
    assert np.isnan(t[4]) and np.isnan(t[6])  # off MK; not a training class
    assert t[5] == 35.0  # an unparsable own type: the label's
    np.testing.assert_array_equal(star_types(y, None, CLASSES)[:4], [20.0, 20.0, 42.0, 51.0])


def test_simulated_elodie_types_say_where_each_star_was_drawn(tmp_path):
    """Within a subclass, a star ELODIE calls later is redder: the type is the star's."""
    from startrack.simulator.simulate import simulate_survey

    simulate_survey(tmp_path, 600, 600, 4, None, None, workers=1)
    cat = pd.read_csv(tmp_path / "catalog.csv")
    own = cat["elodie_sptype"].map(spectral_type_of)
    label = cat["subClass"].map(spectral_type_of)
    mk = own.notna() & label.notna()
    assert mk.mean() > 0.8
    assert cat.loc[mk, "elodie_sptype"].str.contains("III").any()  # giants are drawn too
    assert (own[mk] - label[mk]).abs().max() <= 10  # a neighbour's interval at most
    gr = cat["psfMag_g"] - cat["psfMag_r"]
    fk = mk & label.between(32, 55)  # F2-K5, where g-r follows the type closely
    offset = own[fk] - label[fk]
    resid = gr[fk] - gr[fk].groupby(cat.loc[fk, "subClass"]).transform("median")
    # (dust, metallicity and photometric noise blur g-r too; the shift is a few hundredths)
    assert resid[offset >= 1].mean() - resid[offset <= -1].mean() > 0.02
