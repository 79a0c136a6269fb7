"""Run configuration: nested plain dicts with documented defaults, stored whole in the manifest.

Plain dicts (not classes) because the config is data: it is hashed per stage, written to JSON and
read by tools that know nothing of Python. Each run kind holds its defaults.
"""

from __future__ import annotations

import copy


def merge(config: dict, overrides: dict) -> dict:
    """A copy of ``config`` with ``overrides`` applied; nested dicts merge, other values replace."""
    result = copy.deepcopy(config)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
