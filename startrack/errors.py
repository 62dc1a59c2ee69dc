"""Errors a user can fix: the CLI prints them as one clear line, without a traceback."""


class UserError(Exception):
    """Bad input, missing data or a busy warehouse: say what to do, don't crash."""
