"""The one error type qcore raises for input a person can fix."""

import re

ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?")  # terminal escape sequences (colours, cursor moves)
LINE_BREAK = re.compile(r"[\t\n\v\f\r]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """`text` as one printable line: escapes dropped, line breaks turned to spaces, other control characters
    dropped (a file's tensor names or a library's message can carry any of them)."""
    return CONTROL.sub("", LINE_BREAK.sub(" ", ESCAPE.sub("", text)))


class QcoreError(ValueError):
    """Bad input: an unknown method, an invalid option, an unreadable file, non-finite weights.

    The message says what was wrong and what to do; the CLI prints it as one line and the app
    shows it as a message, never a traceback. It is made one printable line on construction.
    """

    def __init__(self, message: object = "", *args):
        super().__init__(one_line(str(message)), *args)
