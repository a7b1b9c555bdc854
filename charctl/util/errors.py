"""The one error type users see: a one-line message and exit code 2, never a stack trace."""


class CharctlError(Exception):
    """Bad input or an impossible request. The message is one line naming the file and the place."""

    exit_code = 2
