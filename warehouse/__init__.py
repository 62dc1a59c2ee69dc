"""The warehouse: immutable Parquet + DuckDB snapshots, one writer, many readers."""
