"""What a racer's reward function may use: modules, built-in names, attributes.

These rules give a clear message early; they are not the boundary. The boundary is the
confined worker process (:mod:`drem.training.reward_worker`): code that gets past
these rules (``gi_frame.f_back`` style frame walks, numpy's file functions, ...) still
cannot read or write a file, open a socket, start a process or use more memory or CPU
time than its limits.

* Modules: ``math`` and ``numpy`` (with its already-loaded submodules such as
  ``numpy.linalg``). ``random`` is refused: DeepRacer's examples import only ``math``, a
  reward should be a function of the car's state, and ``numpy.random`` is there for the
  rare function that wants noise.
* Built-in names: the plain-data ones in :data:`SAFE_BUILTINS`; no ``open``, ``eval``,
  ``exec``, ``compile``, ``__import__``, ``getattr``/``setattr``/``delattr``,
  ``globals``/``locals``/``vars``, ``input``, ``breakpoint``.
* Attributes: none that start with ``__`` and none of the frame and code attributes in
  :data:`REFUSED_ATTRIBUTES`.
"""

from __future__ import annotations

import ast
import builtins
import sys
from collections.abc import Callable

__all__ = ["ALLOWED_MODULES", "SAFE_BUILTINS", "REFUSED_NAMES", "REFUSED_ATTRIBUTES",
           "RuleError", "check_source", "restricted_builtins"]

ALLOWED_MODULES = ("math", "numpy")
SAFE_BUILTINS = (
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "format",
    "frozenset", "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min",
    "next", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip", "True", "False", "None", "NotImplemented", "Ellipsis",
    "ArithmeticError", "AssertionError", "Exception", "IndexError", "KeyError", "LookupError",
    "OverflowError", "RuntimeError", "StopIteration", "TypeError", "ValueError",
    "ZeroDivisionError",
)
#: Names refused outright, with why, so the racer reads a reason and not a NameError.
REFUSED_NAMES = {
    "open": "a reward function has no file access",
    "eval": "a reward function may not run code from strings",
    "exec": "a reward function may not run code from strings",
    "compile": "a reward function may not run code from strings",
    "__import__": "import only math and numpy, with an import statement",
    "getattr": "attributes are read with a dot",
    "setattr": "attributes are set with a dot",
    "delattr": "attributes are deleted with del",
    "globals": "a reward function sees its own names only",
    "locals": "a reward function sees its own names only",
    "vars": "a reward function sees its own names only",
    "breakpoint": "a reward function runs unattended",
    "input": "a reward function runs unattended",
    "__builtins__": "a reward function sees its own names only",
}
#: Frame, code and generator attributes that lead out of the function's own names.
REFUSED_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code", "f_back",
    "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "tb_next", "co_code",
    "mro",
})


class RuleError(Exception):
    """The source breaks a rule of this module; the message says which and where."""


def check_source(source: str) -> ast.Module:
    """Parse a reward function's ``source`` and check it against the rules above.

    Returns the parsed module. Raises ``SyntaxError`` for source that does not parse and
    :class:`RuleError` naming the first refused import, name or attribute and its line."""
    tree = ast.parse(source, "reward_function.py")
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [("." * node.level) + (node.module or "")]
        else:
            names = []
        for name in names:
            if name.split(".")[0] not in ALLOWED_MODULES:
                raise RuleError(f"line {line}: import of {name!r} is not allowed: a reward "
                                f"function may import only {' and '.join(ALLOWED_MODULES)}")
        if isinstance(node, ast.Name) and node.id in REFUSED_NAMES:
            raise RuleError(f"line {line}: {node.id!r} is not available: "
                            f"{REFUSED_NAMES[node.id]}")
        if isinstance(node, ast.Attribute) and (node.attr.startswith("__")
                                                 or node.attr in REFUSED_ATTRIBUTES):
            raise RuleError(f"line {line}: the attribute {node.attr!r} is not allowed in a "
                            "reward function")
        if isinstance(node, (ast.Global, ast.Nonlocal)) and any(n.startswith("__")
                                                                 for n in node.names):
            raise RuleError(f"line {line}: names starting with '__' are not allowed")
    return tree


def _restricted_import(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - __import__'s own signature
    top = name.split(".")[0]
    if level or top not in ALLOWED_MODULES or name not in sys.modules:
        raise ImportError(f"import of {name!r} is not allowed: a reward function may import "
                          f"only {' and '.join(ALLOWED_MODULES)}")
    return sys.modules[name] if fromlist else sys.modules[top]


def restricted_builtins(print_fn: Callable[..., None]) -> dict:
    """The ``__builtins__`` a reward function runs with: :data:`SAFE_BUILTINS`, an
    ``__import__`` that hands out only :data:`ALLOWED_MODULES` (already imported),
    ``print`` as ``print_fn`` and ``__build_class__`` for class statements."""
    safe = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    safe.update(__import__=_restricted_import, print=print_fn,
                __build_class__=builtins.__build_class__, __name__="reward_function")
    return safe
