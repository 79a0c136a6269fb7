"""bench/load.py's varied-use scenario: its users change every control to values the page could
send for the run, never to one the value guard (dashboard/filters.py) refuses."""

from __future__ import annotations

import json

from bench.load import REFUSALS, VariedUser, component_props, control_domains, request_body, run_offered, tab_values
from factories import post
from pipeline import runformat
from test_aggregates import build_run


def test_load001_varied_users_pick_only_valid_values_for_every_control(tmp_path, client_for):
    build_run(tmp_path, "agg")
    client = client_for(tmp_path)
    props = component_props(client.get("/_dash-layout").get_json())
    dependencies = client.get("/_dash-dependencies").get_json()
    views = [v for v in tab_values(props) if v in ("gates", "cells", "paths", "last_step", "inspector", "film")]

    def answer(body):
        return post(client, body).get_json() or {}

    offered = run_offered(answer, dependencies, props, "agg")
    assert offered["gates-layer"]["options"]                  # the app's own callbacks said what the run offers
    run = runformat.Run.open(tmp_path, "agg")
    domains = control_domains(dependencies, props, offered, run, views)
    assert {("filter-class", "value"), ("filter-split", "value"), ("filter-hand", "value"),
            ("filter-correct", "value"), ("selected-example", "data"), ("gates-thresholds", "value"),
            ("gates-layer", "value"), ("gates-gate", "value"), ("cells-unit", "value")} <= set(domains)
    user = VariedUser(0, dependencies, props, "agg", domains, views)
    changed, sent = set(), 0
    for _ in range(60):
        key = user.change()
        changed.add(key)
        for body in user.requests(key):
            response = post(client, body)
            sent += 1
            assert response.status_code == 200, (key, user.values[key])
            assert not any(refusal in response.data for refusal in REFUSALS), (key, user.values[key])
        if key == ("gates-thresholds", "value"):
            low, high = user.values[key]
            assert 0 <= low < high <= 1 and round(low * 20, 6).is_integer() and round(high * 20, 6).is_integer()
    assert len(changed) >= 0.4 * len(domains) and sent > 60
    assert json.dumps(request_body(user.callbacks[0], user.values))          # bodies stay plain JSON
