"""Files the dashboard hands to users, safe to open in a spreadsheet (CSV injection, as OWASP
advises).

- ``csv_safe(frame)``: a copy of a table in which a text cell, category or column name that begins
  with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (or their full-width forms) gets a
  single quote in front, so no spreadsheet reads it as a formula. Numbers stay numbers (a negative
  number is not a formula); other text is unchanged.
- ``send_csv(frame, filename)``: what a ``dcc.Download`` callback returns: ``csv_safe``, written
  with CRLF line ends (RFC 4180), so that a cell holding a carriage return or a newline is quoted
  and cannot break a row.
"""

from __future__ import annotations

import pandas as pd
from dash import dcc

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(value):
    """``value`` with a leading ``'`` if it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` safe to open in a spreadsheet (see the module docstring)."""
    safe = frame.copy()
    for column in safe.columns:
        values = safe[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            categories = values.cat.categories
            renamed = [neutralise(category) for category in categories]
            if len(set(renamed)) == len(renamed):
                safe[column] = values.cat.rename_categories(renamed)
            else:                               # "=a" and "'=a" both: plain text then
                safe[column] = values.astype(object).map(neutralise)
        elif values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            safe[column] = values.map(neutralise)
    safe.columns = [neutralise(name) for name in safe.columns]
    return safe


def send_csv(frame: pd.DataFrame, filename: str) -> dict:
    """``dcc.send_data_frame`` of ``csv_safe(frame)``, CRLF line ends (see the module docstring)."""
    return dcc.send_data_frame(csv_safe(frame).to_csv, filename, index=False, lineterminator="\r\n")
