"""What several benchmarks share. ``bench/`` is the script's folder, so every
``bench/*.py`` imports this module by name, with ``sys.path`` left alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def test_module(relpath: str) -> ModuleType:
    """A module of the test suite (e.g. ``tests/models_mgr/factories.py``: the small real
    models the tests build) loaded from its file, since ``tests`` is not an installed
    package. Raises FileNotFoundError when the file is missing."""
    path = REPO / relpath
    if not path.is_file():
        raise FileNotFoundError(path)
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
