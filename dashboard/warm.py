"""Warm a fresh server worker: read the tables of the run the page opens before anyone asks.

Each gunicorn worker keeps its own reads in memory (``data.run_cached``), so the first request of a
fresh or restarted worker paid for them: the Auslan run's projections and examples took 0.2-0.6 s
on the first paths, film and training answers, several times the later ones; a first gate cells
answer under a filter paid ~105 ms per gate table (three per answer).
``gunicorn_conf.post_worker_init`` runs ``warm`` in a background thread as a worker starts; a
request that comes first reads as before. Files over ``MAX_BYTES`` are left to the first request
(a big run's views read parts of them, not the whole table). The gate tables of a big run are
memory maps (``step_maps``): the first worker writes them, the others open them. The gate cells'
sums per example group (``gates.group_cells``) at the heatmap's defaults go to the shared cache,
so that no worker's first filtered heatmap makes a pass over a gate table.
"""

from __future__ import annotations

import logging
import time

from dashboard import data
from dashboard.figures import gates as gate_figures
from dashboard.views import gates, training, why
from pipeline import runformat

MAX_BYTES = 256 * 2 ** 20

log = logging.getLogger(__name__)


def _small(run: runformat.Run, name: str) -> bool:
    entry = run.manifest.files.get(name)
    size = entry.get("size") if isinstance(entry, dict) else None
    return isinstance(size, int) and size <= MAX_BYTES


def _gate_tables(run: runformat.Run) -> list[tuple[int, str]]:
    """The (layer, gate) tables the gate cells heatmap reads under a filter: the sigmoid gates of
    the last layer that has them (``data.step_matrix`` reads a small one, maps a big one)."""
    if not gates.applies_to(run.manifest):
        return []
    return [(gates.gate_layers(run.manifest)[-1], gate) for gate in runformat.SIGMOID_GATES]


def warm(run_id: str | None = None) -> list[str]:
    """Read the default run's (or ``run_id``'s) examples, projections, predictions, history and
    last gate tables and attribution into this process's memo; returns what was read. Never raises: it only saves
    time, and a run that cannot be read is the first request's to report (here it is logged)."""
    done: list[str] = []
    try:
        run_id = run_id or data.default_run(data.list_runs())
        if run_id is None:
            return done
        run = data.get_run(run_id)
        started = time.monotonic()
        data.examples(run)
        data.labels(run)
        done.append("examples")
        if _small(run, runformat.PROJECTIONS_FILE):
            for projection_id in data.path_projection_ids(run.manifest):
                data.projection(run, projection_id)
                done.append(projection_id)
            for projection_id in data.last_step_projection_ids(run.manifest):
                data.last_step_projection(run, projection_id)
        if data.has_predictions(run.manifest) and _small(run, runformat.PREDICTIONS_FILE):
            data.predictions(run)
            done.append("predictions")
        if run.has(runformat.HISTORY_FILE):
            training.history(run)
            done.append("history")
        for layer, gate in _gate_tables(run):
            data.step_matrix(run, layer, gate)
            gates.group_cells(run, layer, gate, "end", "saturated", gate_figures.DEFAULT_LOW,
                              gate_figures.DEFAULT_HIGH)       # the heatmap's defaults, any filter
            done.append(f"{gate} {layer}")
        if why.no_attribution_message(run) is None and all(
                _small(run, name) for name in runformat.ATTRIBUTION_FILES.values()):
            for which in runformat.ATTRIBUTION_FILES:       # the inspector's first "why" read them
                why.attribution_table(run, which)           # (~0.1 s each at Auslan size)
            why.occlusion_table(run)
            why.by_class_table(run)
            done.append("attribution")
        log.info("warmed run %s in %.1f s: %s", run_id, time.monotonic() - started, ", ".join(done))
    except Exception as error:          # noqa: BLE001 - a background read-ahead; the request path reports
        log.warning("warming stopped: %s", error)
    return done
