"""The source rules: what a reward function may import, name and reach (checked before
it runs, inside the worker; these give the message, the worker's confinement is the
boundary: tests/training/test_reward_confinement.py)."""

from __future__ import annotations

import numpy.linalg  # noqa: F401 - loaded before the import hook hands it out, as in the worker
import pytest

from drem.training.reward_rules import RuleError, check_source, restricted_builtins

ESCAPES = {
    "import os": "import of 'os' is not allowed",
    "import socket": "import of 'socket' is not allowed",
    "from subprocess import run": "import of 'subprocess' is not allowed",
    "import random": "import of 'random' is not allowed",
    "import numpy.ctypeslib, ctypes": "import of 'ctypes' is not allowed",
    "from . import x": "import of '.' is not allowed",
    "open('/etc/passwd').read()": "'open' is not available: a reward function has no file access",
    "__import__('os')": "'__import__' is not available",
    "eval('1+1')": "'eval' is not available",
    "exec('x = 1')": "'exec' is not available",
    "compile('1', 'f', 'eval')": "'compile' is not available",
    "getattr(1, 'real')": "'getattr' is not available",
    "globals()['x'] = 1": "'globals' is not available",
    "().__class__.__bases__[0].__subclasses__()": "the attribute '__subclasses__' is not allowed",
    "x = (1).__class__": "the attribute '__class__' is not allowed",
    "f = lambda: 0\nf.__globals__": "the attribute '__globals__' is not allowed",
    "g = (i for i in [1])\ng.gi_frame.f_back.f_globals": "the attribute 'f_globals' is not allowed",
    "__builtins__['open']": "'__builtins__' is not available",
}


@pytest.mark.parametrize("code", list(ESCAPES))
def test_escapes_are_refused_with_a_reason_and_the_line(code):
    source = "def reward_function(params):\n    return 1.0\n" + code + "\n"
    with pytest.raises(RuleError) as caught:
        check_source(source)
    assert ESCAPES[code] in str(caught.value)
    assert str(caught.value).startswith(f"line {3 + code.count(chr(10))}:")


def test_imports_inside_the_function_are_checked_too():
    with pytest.raises(RuleError, match="line 3: import of 'os'"):
        check_source("def reward_function(params):\n    if params['steps'] > 1:\n"
                     "        import os\n    return 1.0\n")


def test_deepracer_style_sources_pass():
    tree = check_source("import math\nimport numpy as np\nfrom math import sqrt\n"
                        "import numpy.linalg\n\n"
                        "class Helper:\n    def __init__(self):\n        self.k = 2\n\n"
                        "def reward_function(params):\n"
                        "    return float(np.clip(math.cos(0) * sqrt(4) / Helper().k, 0, 1))\n")
    assert tree.body


def test_a_syntax_error_is_a_syntax_error():
    with pytest.raises(SyntaxError):
        check_source("def reward_function(params)\n    return 1\n")


def test_the_builtins_hold_no_way_out():
    printed = []
    safe = restricted_builtins(printed.append)
    for name in ("open", "eval", "exec", "compile", "getattr", "setattr", "globals", "vars",
                 "input", "breakpoint", "type", "object", "memoryview"):
        assert name not in safe
    assert safe["print"] == printed.append
    assert safe["__import__"]("math").sqrt(4) == 2.0
    assert safe["__import__"]("numpy.linalg", fromlist=("norm",)).norm([3.0, 4.0]) == 5.0
    for name in ("os", "sys", "random", "socket"):
        with pytest.raises(ImportError, match=f"import of '{name}' is not allowed"):
            safe["__import__"](name)
