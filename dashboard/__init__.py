"""The Dash dashboard over the warehouse (read-only)."""
