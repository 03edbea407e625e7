"""Errors that are the user's to fix: the CLI prints their message, never a traceback."""


class UserError(Exception):
    """A problem with the user's input or environment, worded for the user."""
