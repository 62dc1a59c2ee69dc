"""ETL: SDSS catalog and spectrum files -> validated, gridded records for the warehouse."""
