"""pytest plugin for benchmarks/metric_mutations.py: one hand mutation of one metric.

``SIMBAFLOW_MUTATION=module:function:key:mode`` replaces, once the tests are
collected, every reference to ``module.function`` by a wrapper whose result
(its ``key`` entry for a dict, the value itself when ``key`` is ``-``) is set
to 0 (``mode`` ``zero``) or multiplied by 1.01 (``scale``).
"""

from __future__ import annotations

import importlib
import os
import sys


def _mutate(value, mode):
    return value * 0 if mode == "zero" else value * 1.01


def pytest_collection_finish(session):
    spec = os.environ.get("SIMBAFLOW_MUTATION")
    if not spec:
        return
    module_name, function_name, key, mode = spec.split(":")
    original = getattr(importlib.import_module(module_name), function_name)

    def wrapper(*args, **kwargs):
        out = original(*args, **kwargs)
        if key == "-":
            return _mutate(out, mode)
        out = dict(out)
        out[key] = _mutate(out[key], mode)
        return out

    # Every module that imported the function by name gets the mutant too.
    for module in list(sys.modules.values()):
        for name, value in list(getattr(module, "__dict__", {}).items()):
            if value is original:
                setattr(module, name, wrapper)
