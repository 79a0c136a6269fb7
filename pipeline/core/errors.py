"""The error every bad input raises: the command line prints its message as ``error: ...``, exit 2."""


class DataError(ValueError):
    """Input that cannot be used as given; the message names the file, line or field at fault."""
