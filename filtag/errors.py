"""Exceptions that filtag raises for bad input.

Every error says what was expected, what was received and what to do next. The
scripts turn them into one log line and exit code 2, without a traceback.
"""


class FiltagError(ValueError):
    """Bad input: a parameter, a file or a folder that filtag cannot use."""


class ArtifactError(FiltagError):
    """A step file that is missing, truncated, foreign or from the wrong step."""


class UnsafePickleError(ArtifactError):
    """A pickle that names a global outside filtag's allowed plain types."""
