"""The Study view's content: Tempczyk & Bartołd's claims as measured on one run.

``python -m pipeline report RUN`` writes the measures into the run (``report/study.json``, named
by the manifest's ``report.numbers``); this module turns that dict into one row per claim: the
study's statement, our numbers, the verdict and the rule that gave it. Pure functions: the
report's dict (and the run's manifest) in, lines or Dash components out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dash import html

from pipeline import runformat

VERDICT_CLASSES = {"holds": "verdict-holds", "does not hold": "verdict-fails", "unclear": "verdict-unclear",
                   "not applicable": "verdict-na"}
LIST_SHOWN = 6          # a long list of numbers shows this many, then how many in all


def number_lines(numbers: Any, prefix: str = "") -> list[str]:
    """Nested numbers as ``"key › key: value"`` lines: floats to 3 significant digits, a list of
    scalars inline (the first ``LIST_SHOWN``), a list of records as how many there are."""
    if isinstance(numbers, Mapping):
        lines = []
        for key, value in numbers.items():
            name = f"{prefix} › {key}" if prefix else str(key)
            if isinstance(value, Mapping):
                lines += number_lines(value, name)
            else:
                lines.append(f"{name}: {_value(value)}")
        return lines
    return [f"{prefix}: {_value(numbers)}" if prefix else _value(numbers)]


def _value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, Mapping) for v in value):
            return f"{len(value)} records"
        shown = ", ".join(_value(v) for v in value[:LIST_SHOWN])
        return f"[{shown}{f', … ({len(value)} in all)' if len(value) > LIST_SHOWN else ''}]"
    return str(value)


def is_current(report: Mapping, manifest: runformat.Manifest) -> bool:
    """Whether the report was made from the run's present stages (their input hashes)."""
    present = {name: (record or {}).get("input_hash", "") for name, record in manifest.stages.items()
               if name != "report"}
    return report.get("made_from") == present


def study_panel(report: Mapping, manifest: runformat.Manifest) -> html.Div:
    """The claims table with a line that says whether the report is up to date."""
    run_id = manifest.run_id
    current = is_current(report, manifest)
    head = (f"Measured on run {run_id!r} by `python -m pipeline report {run_id}`; the rules are the "
            "report's own (report/study.md holds the same with figures)." if current else
            f"This report was made before run {run_id!r} was rebuilt: run `python -m pipeline report "
            f"{run_id}` again for numbers of the present run.")
    rows = [html.Tr([html.Th("Claim"), html.Th("The study says"), html.Th("Our numbers"), html.Th("Verdict"),
                     html.Th("Rule")])]
    for claim in report.get("claims") or []:
        verdict = str(claim.get("verdict", ""))
        missing = claim.get("missing_classes")
        lines = number_lines(claim.get("numbers") or {})
        rows.append(html.Tr([
            html.Td(str(claim.get("title") or claim.get("claim", ""))),
            html.Td(str(claim.get("statement", ""))),
            html.Td([html.Div(line) for line in lines[:12]]
                    + ([html.Details([html.Summary(f"{len(lines) - 12} more"),
                                      *[html.Div(line) for line in lines[12:]]])] if len(lines) > 12 else [])),
            html.Td([html.Strong(verdict, className=VERDICT_CLASSES.get(verdict, ""))]
                    + ([html.Div(f"missing classes: {', '.join(missing)}", className="hint")] if missing else [])),
            html.Td(str(claim.get("rule", ""))),
        ], className="study-claim"))
    return html.Div([html.P(head, className="hint" if current else "warning"),
                     html.Table(rows, className="study-table")])
