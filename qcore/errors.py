"""The one error type qcore raises for input a person can fix."""


class QcoreError(ValueError):
    """Bad input: an unknown method, an invalid option, an unreadable file, non-finite weights.

    The message says what was wrong and what to do; the CLI prints it as one line and the app
    shows it as a message, never a traceback.
    """
