"""Helpers of the inspection tests: a bad file must be rejected and nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drem.models_mgr.inspect import InspectLimits, ModelRejected, inspect_model_file


def tree(folder: Path) -> set[str]:
    """Every path under ``folder``, relative, with sizes (to see new or changed files)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out.add(f"{p.relative_to(folder)}:{p.lstat().st_size if p.is_file() else 'd'}")
    return out


def reject(path: Path, filename: str | None = None, limits: InspectLimits | None = None) -> str:
    """Inspect a bad file; assert it is rejected and nothing was written; return the reason."""
    root = path.parent.parent
    before = tree(root)
    with pytest.raises(ModelRejected) as excinfo:
        inspect_model_file(path, filename or path.name, limits)
    assert tree(root) == before, "inspection wrote files"
    reason = excinfo.value.reason
    assert reason and reason == str(excinfo.value)
    return reason
