"""Dash Pages, one module per page."""
