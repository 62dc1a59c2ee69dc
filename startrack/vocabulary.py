"""Names every part shares: photometric bands, model branches, baselines and data splits.

Defined once here so the ETL, the model, the warehouse contract and the dashboard cannot drift
apart (star ids live in startrack.star_id, labels and the within-one rule in startrack.labels,
the wavelength grid in startrack.grid, spectral lines in startrack.lines).
"""

from __future__ import annotations

#: SDSS ugriz, in wavelength order: ``mag_<band>`` / ``magerr_<band>`` columns of ``stars``.
BANDS: tuple[str, ...] = ("u", "g", "r", "i", "z")

#: The model's three predictions per star (the order the model's heads are built in).
BRANCHES: tuple[str, ...] = ("dense", "lstm", "fusion")

#: Baselines trained next to each model; their metrics share the model's tables.
BASELINES: tuple[str, ...] = ("baseline_hgb", "baseline_pca_lr", "baseline_template")

#: The deterministic star-id hash split (startrack.ml.features.split_of).
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Evaluation splits in ``metrics``/``class_metrics``/``confusion``: held-out test stars, those
#: with a spectrum (the branches on equal footing), every labelled star (training included).
EVAL_SPLITS: tuple[str, ...] = ("test", "test_spectra", "all")
