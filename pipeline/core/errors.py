"""The error every bad input raises: the command line prints its message as ``error: ...``, exit 2;
and the warning about input that is used anyway, printed as ``warning: ...``."""


class DataError(ValueError):
    """Input that cannot be used as given; the message names the file, line or field at fault."""


class DataWarning(UserWarning):
    """Input used with a caveat (files skipped, a session folder missing); the message names them."""
