"""What a callback accepts from the page: every filter value checked against the run before any work.

A callback request can carry anything (``dashboard.errors`` already refuses what is not JSON, too
big, or of a JSON type the page never sends for a property). What is left is values of the right
type that the page would still never send for this run: 5,000 class names the run does not have,
a split that does not exist, an example id it does not hold, a dict inside a list of names, a layer
it lacks, an epoch it did not keep. Each is refused here with ``Refused`` (a ``runformat.RunError``,
so a view shows it as its usual message), and checking costs O(values sent): set look-ups, never a
pass over the run's points per value.

Two ways in, one set of checks:

- the request guard (``errors.guard_callbacks``) runs ``check_request`` on every callback request
  before Dash dispatches it, with the checks of the shell (``SHARED``), of every view (their
  ``VALUE_CHECKS``) and ``one_of`` for every control whose options are fixed in the layout
  (``errors.option_checks``); a refused request gets the refusal in its figures and texts;
- view functions call ``filter_bar`` and ``example_id`` themselves, so that called directly (tests,
  benchmarks, the notebook) they hand their figure functions only checked values too.

A check is ``check(run, value) -> None`` raising ``Refused``; ``run`` is None when the request names
no readable run (then only the value's shape is checked; the callback says why the run cannot be
read).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dashboard import data, state
from pipeline import runformat

Check = Callable[[runformat.Run | None, Any], None]
ECHO = 40                      # characters of a refused value the message repeats
LARGEST_ID = 2 ** 53           # example ids beyond this are no example of any run


class Refused(runformat.RunError):
    """A value the page never sends for this run; the message says which and why."""


def _echo(value) -> str:
    text = repr(value)
    return text if len(text) <= ECHO else text[:ECHO - 3] + "..."


def _of_run(run: runformat.Run | None) -> str:
    return f" of run {run.run_id[:60]!r}" if run is not None else ""


def _listed(value, what: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Refused(f"{what} must be a list, not {type(value).__name__}")
    return value


def _refuse_unknown(values: list, known, one: str, many: str, where: str = "", hint: str = "") -> None:
    """Refuse ``values`` unless every one is text among ``known`` (a set: O(1) per value)."""
    bad = [value for value in values if not (isinstance(value, str) and value in known)]
    if not bad:
        return
    first = _echo(bad[0])
    if len(values) == 1:
        raise Refused(f"{first} is not {one}{where}{hint}")
    raise Refused(f"{len(bad):,} of the {len(values):,} {many} sent are not {many}{where} (first: {first}){hint}")


def class_names(run: runformat.Run | None, value) -> list[str]:
    """The class filter: [] (every class) or names of the run's classes, each once."""
    names = _listed(value, "the class filter")
    if not names:
        return []
    if run is not None and not run.manifest.is_classification:
        return []           # documents have no classes: a choice carried over from a classifier changes nothing
    known = set(run.classes) if run is not None else None
    if known is None:
        _refuse_unknown(names, _Text(), "a class name", "class names")
    else:
        _refuse_unknown(names, known, "a class", "classes", _of_run(run), ": choose classes in the filter bar")
    return list(dict.fromkeys(names))


class _Text:
    """Any text (the shape check when no run is known)."""

    def __contains__(self, item) -> bool:
        return isinstance(item, str)


def _subset(value, allowed: tuple[str, ...], what: str) -> list[str] | None:
    """None (all) or a list of ``allowed`` names."""
    if value is None:
        return None
    names = _listed(value, f"the {what} filter")
    _refuse_unknown(names, set(allowed), f"a {what}", f"{what}s", hint=f" ({', '.join(allowed)})")
    return list(dict.fromkeys(names))


def splits(run: runformat.Run | None, value) -> list[str] | None:
    return _subset(value, state.SPLITS, "split")


def hands(run: runformat.Run | None, value) -> list[str] | None:
    return _subset(value, state.HANDS, "hand")


def correctness(run: runformat.Run | None, value) -> str:
    if value is None:
        return "all"
    if not (isinstance(value, str) and value in state.CORRECTNESS):
        raise Refused(f"{_echo(value)} is not an examples filter ({', '.join(state.CORRECTNESS)})")
    return value


def example_id(run: runformat.Run | None, value) -> int | None:
    """None (nothing selected) or the id of one of the run's examples."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > LARGEST_ID:
        raise Refused(f"an example id is a whole number, not {_echo(value)}")
    if run is not None and data.example_row(run, value) is None:
        raise Refused(f"run {run.run_id[:60]!r} has no example {value}")
    return value


MAX_CHOSEN = 100_000          # a chosen set larger than this is no lasso's


def example_ids(run: runformat.Run | None, value) -> list[int] | None:
    """A chosen set (a box or lasso's): None (no set) or a list of ids of the run's examples,
    each once (checked in O(values x log examples))."""
    if value is None:
        return None
    ids = _listed(value, "the chosen examples")
    if len(ids) > MAX_CHOSEN:
        raise Refused(f"{len(ids):,} chosen examples is more than any run here holds")
    bad = [v for v in ids if isinstance(v, bool) or not isinstance(v, int) or abs(v) > LARGEST_ID]
    if bad:
        raise Refused(f"an example id is a whole number, not {_echo(bad[0])}")
    if run is not None and ids:
        known = data.examples(run)["example_id"].to_numpy()
        wanted = np.asarray(ids, dtype=np.int64)
        position = np.clip(np.searchsorted(known, wanted), 0, len(known) - 1)
        missing = wanted[known[position] != wanted] if len(known) else wanted
        if len(missing):
            raise Refused(f"run {run.run_id[:60]!r} has no example {int(missing[0])}"
                          + (f" ({len(missing):,} of the chosen are not its)" if len(missing) > 1 else ""))
    return list(dict.fromkeys(ids))


def table_cell(run: runformat.Run | None, value) -> None:
    """A click in the examples table (DataTable's ``active_cell``): its ``row_id`` is an example
    of the run."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise Refused(f"a table cell is a dict, not {type(value).__name__}")
    example_id(run, value.get("row_id"))


def filter_bar(run: runformat.Run | None, classes, split_values, hand_values, correct_value) -> tuple:
    """The filter bar's values checked: ``(classes, splits, hands, correctness)``."""
    return (class_names(run, classes), splits(run, split_values), hands(run, hand_values),
            correctness(run, correct_value))


def layer(run: runformat.Run | None, value) -> None:
    """A layer picker's value: "last", or the index (text, as the URL gives it) of a layer the
    run has."""
    if value is None or value == "last":
        return
    index = value if isinstance(value, int) and not isinstance(value, bool) else (
        int(value) if isinstance(value, str) and value.isdigit() and len(value) < 6 else None)
    if index is None:
        raise Refused(f"{_echo(value)} is not a layer")
    if run is not None and index not in {item.index for item in run.layers}:
        raise Refused(f"run {run.run_id[:60]!r} has no layer {index}")


def projected_states(run: runformat.Run | None, value) -> None:
    """A states choice's value: None or "" (the first) or a ``"layer:tensor"`` pair the run's
    projections picture."""
    if value is None or value == "":
        return
    if not isinstance(value, str) or len(value) > 40:
        raise Refused(f"{_echo(value)} is not a layer and tensor")
    if run is not None and value not in data.projection_states(run.manifest):
        raise Refused(f"run {run.run_id[:60]!r} has no projections of {_echo(value)}")


def epoch(run: runformat.Run | None, value) -> int | None:
    """An epoch slider's value: None (the last kept epoch) or an epoch the run kept."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(f"an epoch is a whole number, not {_echo(value)}")
    if run is not None and value not in set(run.kept_epochs):
        kept = run.kept_epochs
        raise Refused(f"run {run.run_id[:60]!r} kept no picture of epoch {value}"
                      + (f" (it kept {', '.join(map(str, kept))})" if kept else ""))
    return value


def one_of(*allowed) -> Check:
    """A check for a choice among fixed values (a list of them, for a checklist)."""
    known = frozenset(allowed)

    def check(run: runformat.Run | None, value) -> None:
        if value is None:
            return
        for item in value if isinstance(value, list) else [value]:
            if not (isinstance(item, (str, int, float)) and item in known):
                raise Refused(f"{_echo(item)} is not one of the choices "
                              f"({', '.join(map(str, sorted(known, key=str)))})")
    return check


def numbers(count: int, low: float, high: float) -> Check:
    """A check for ``count`` numbers between ``low`` and ``high`` (a range slider)."""
    def check(run: runformat.Run | None, value) -> None:
        if value is None:
            return
        if not (isinstance(value, list) and len(value) == count and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high for v in value)):
            raise Refused(f"{_echo(value)} is not {count} numbers from {low:g} to {high:g}")
    return check


#: The shell's values every filtered view reads.
SHARED: dict[tuple[str, str], Check] = {
    (state.CLASS, "value"): class_names,
    (state.SPLIT, "value"): splits,
    (state.HAND, "value"): hands,
    (state.CORRECT, "value"): correctness,
    (state.SELECTED, "data"): example_id,
    (state.CHOSEN, "data"): example_ids,
}


def check_request(body: Mapping, checks: Mapping[tuple[str, str], Check]) -> str | None:
    """The refusal of the first value in a callback request's inputs and state that ``checks``
    refuses, or None. The run is the request's run picker value (none when it names no readable
    run); nothing but the checked values is read."""
    values = {}
    for key in ("inputs", "state"):
        for item in body.get(key) or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and isinstance(item.get("property"), str):
                values[(item["id"], item["property"])] = item.get("value")
    todo = [(key, value) for key, value in values.items() if key in checks]
    if not todo:
        return None
    run = None
    run_id = values.get((state.RUN, "value"))
    if isinstance(run_id, str) and run_id:
        try:
            run = data.get_run(run_id)
        except (runformat.RunError, runformat.RunChanged):
            run = None                     # the callback says why it cannot be read
    for key, value in todo:
        try:
            checks[key](run, value)
        except Refused as error:
            return str(error)
        except (runformat.RunError, runformat.RunChanged):
            continue                       # a run file that cannot be read: the callback says so
    return None
