"""The layer contract (``[tool.importlinter]`` in pyproject.toml) holds, and drem's own
modules are imported at the top of a module, not inside functions, unless a comment says why."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
#: Tool markers in a comment that give no reason: ``noqa`` (with codes) and ``type: ignore``.
_MARKERS = r"noqa(:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[[^]]*\])?"


def test_the_layer_contract_holds():
    """lint-imports (import-linter) keeps every contract: layers, car_client apart, no cycles."""
    proc = subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout, proc.stdout[-2000:]


def test_drem_may_import_only_the_protocol_from_car_client():
    """The forbidden list of that contract names every car_client module except the three
    plain-Python ones the server shares with the car: protocol, model_check and confine."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c.get("source_modules") == ["drem"])
    children = {f"car_client.{p.stem}" for p in (ROOT / "car_client").iterdir()
                if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert set(contract["forbidden_modules"]) == children - {"car_client.protocol", "car_client.model_check",
                                                          "car_client.confine"}


def _has_reason(lines: list[str], lineno: int) -> bool:
    """A comment with words (not only ``noqa``/``type: ignore``) on line ``lineno`` or the one above."""
    for line in lines[max(lineno - 2, 0):lineno]:
        if "#" not in line:
            continue
        comment = line.split("#", 1)[1]
        words = re.sub(_MARKERS, "", comment)
        if re.search(r"[A-Za-z]{3,}", words):
            return True
    return False


def _function_level_drem_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of each import of a drem module inside a function without a reason comment."""
    source = path.read_text()
    lines = source.splitlines()
    found = []
    for func in ast.walk(ast.parse(source, str(path))):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                own = any(a.name == "drem" or a.name.startswith("drem.") for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                own = node.level > 0 or node.module == "drem" or (node.module or "").startswith("drem.")
            else:
                continue
            if own and not _has_reason(lines, node.lineno):
                found.append((node.lineno, lines[node.lineno - 1].strip()))
    return sorted(set(found))


def test_no_function_level_imports_of_drem_modules_without_a_reason():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}" for path in sorted((ROOT / "drem").rglob("*.py"))
                 for line, text in _function_level_drem_imports(path)]
    assert not offenders, (f"{len(offenders)} function-level imports of drem modules; move them to the top "
                           "of the module or say why on the line:\n" + "\n".join(offenders))


def test_the_import_check_finds_what_it_should(tmp_path):
    """The checker itself: bare function-level imports are found, commented ones are not."""
    sample = tmp_path / "sample.py"
    sample.write_text("def a():\n    from drem.platform import config\n\n\n"
                      "def b():\n    # heavy optional dependency, loaded on first use\n"
                      "    from drem import app\n\n\n"
                      "def c():\n    import drem.cli  # noqa: PLC0415\n\n\n"
                      "class D:\n    def e(self):\n        from . import service\n        import json\n")
    assert [line for line, _ in _function_level_drem_imports(sample)] == [2, 11, 16]
