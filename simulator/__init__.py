"""The demo-survey simulator: stellar templates and the physics to render a survey in SDSS formats.

Not part of the data path (``etl -> warehouse -> ml -> warehouse -> dashboard``): it writes the
files the ETL reads (``startrack simulate``), and its templates and dust law also serve the
model's template-fit baseline, its augmentation and the dashboard's overlays.
"""
