"""``startrack fetch``: the real SDSS catalog (SkyServer SQL) and spec-lite files (SAS).

Modules: ``session`` (retrying HTTP session, rate cap), ``skyserver`` (paged SQL into
catalog.parquet), ``download`` (verified, resumable spec-lite downloads), ``manifest``
(DIR/fetch.json), ``cli``. URL and path building lives in :mod:`startrack.sdss_urls`.
"""
