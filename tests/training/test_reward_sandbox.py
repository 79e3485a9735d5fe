"""The reward-function sandbox end to end: DeepRacer's example functions give their
rewards, and every hostile function fails with a clear message, harming nothing."""

from __future__ import annotations

import os
import pwd
import textwrap

import pytest

from car_client.confine import landlock_abi
from drem.training.reward_examples import (
    FOLLOW_THE_CENTRE_LINE,
    PREVENT_ZIG_ZAG,
    STAY_INSIDE_THE_BORDERS,
)
from drem.training.reward_sandbox import RewardFunctionError, RewardLimits, RewardSandbox
from tests.training.conftest import CONSTANTS, step

#: Fast limits for the hostile cases (the defaults allow 0.1 s per call, 512 MiB); the
#: wall-clock margin is wide so a loaded machine cannot turn a CPU-timer case into a
#: wall-clock one.
QUICK = RewardLimits(memory_mb=512, cpu_s=60, call_s=0.05, batch_margin_s=5.0)


def fn(body: str, header: str = "") -> str:
    """Source of a reward function whose body is ``body``."""
    return header + "def reward_function(params):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def fails(source: str, steps=None, limits: RewardLimits = QUICK) -> RewardFunctionError:
    """Load ``source`` and call it on ``steps`` (one plain step by default); the
    RewardFunctionError it fails with (the test fails if it does not)."""
    with pytest.raises(RewardFunctionError) as caught:
        with RewardSandbox(source, CONSTANTS, limits) as sandbox:
            sandbox.rewards(steps or [step()])
    return caught.value


# --------------------------------------------------------------------- good functions

def test_follow_the_centre_line_gives_deepracers_rewards():
    w = CONSTANTS["track_width"]
    with RewardSandbox(FOLLOW_THE_CENTRE_LINE, CONSTANTS) as sandbox:
        rewards = sandbox.rewards([step(distance_from_center=d * w) for d in (0.05, 0.2, 0.4, 0.6)])
        assert rewards == [1.0, 0.5, 0.1, 1e-3]
        assert sandbox.reward(step()) == 1.0  # the worker stays up for the next batch
        if os.geteuid() == 0:
            assert sandbox.confinement["uid"] == pwd.getpwnam("nobody").pw_uid
            assert sandbox.confinement["network_namespace"] is True
        assert sandbox.confinement["landlock_abi"] == landlock_abi()


def test_stay_inside_the_two_borders():
    with RewardSandbox(STAY_INSIDE_THE_BORDERS, CONSTANTS) as sandbox:
        assert sandbox.rewards([step(), step(distance_from_center=0.35),
                                step(all_wheels_on_track=False)]) == [1.0, 1e-3, 1e-3]


def test_prevent_zig_zag():
    with RewardSandbox(PREVENT_ZIG_ZAG, CONSTANTS) as sandbox:
        rewards = sandbox.rewards([step(steering_angle=5.0), step(steering_angle=-20.0),
                                   step(distance_from_center=0.1, steering_angle=30.0)])
    assert rewards == pytest.approx([1.0, 0.8, 0.4])


def test_a_function_sees_every_deepracer_key_numpy_and_its_own_state():
    """The track constants arrive with every call; numpy and math work; the waypoints
    list is a fresh copy per call, so a function that mutates it cannot poison the next."""
    source = fn("""
        params['waypoints'].append((9.0, 9.0))
        nxt = np.array(params['waypoints'][params['closest_waypoints'][1]])
        heading = math.degrees(math.atan2(nxt[1] - params['y'], nxt[0] - params['x']))
        print('keys', len(params), 'points', len(params['waypoints']))
        return float(len(params['waypoints']) + np.cos(np.radians(heading - params['heading'])))
    """, header="import math\nimport numpy as np\n")
    with RewardSandbox(source, CONSTANTS) as sandbox:
        assert sandbox.rewards([step(), step(heading=90.0)]) == pytest.approx([6.0, 5.0])
        assert sandbox.log == "keys 17 points 5\n" * 2


def test_a_bad_step_is_refused_before_anything_is_sent():
    with RewardSandbox(FOLLOW_THE_CENTRE_LINE, CONSTANTS) as sandbox:
        with pytest.raises(ValueError, match=r"params\['distance_from_center'\] must be a finite"):
            sandbox.rewards([step(), step(distance_from_center=float("nan"))])
        with pytest.raises(ValueError, match="same params keys"):
            sandbox.rewards([step(), step(closest_objects=[0, 1])])
        assert sandbox.reward(step()) == 1.0  # nothing was lost
    with pytest.raises(ValueError, match="at least 2 points"):
        RewardSandbox(FOLLOW_THE_CENTRE_LINE, {**CONSTANTS, "waypoints": [(0.0, 0.0)]})
    with pytest.raises(ValueError, match="longer than"):
        RewardSandbox("#" * 100_001, CONSTANTS)


# --------------------------------------------------------------------- hostile functions

def test_a_function_that_raises():
    err = fails(fn("speed = params['speed']\nreturn 1.0 / (speed - speed)"),
                [step(), step(speed=2.0)])
    assert str(err) == "reward_function raised ZeroDivisionError: float division by zero (line 3)"
    assert err.index == 0


def test_a_missing_key_names_the_key():
    err = fails(fn("return params['distance_from_centre']"))
    assert str(err) == "reward_function raised KeyError: 'distance_from_centre' (line 2)"


def test_an_endless_loop_is_stopped_by_the_cpu_timer():
    err = fails(fn("while True:\n    pass"))
    assert str(err) == "reward_function used more than 0.05 s of CPU time on one call (an endless loop?)"


def test_a_loop_that_swallows_the_timer_is_stopped_by_the_wall_clock():
    err = fails(fn("""
        while True:
            try:
                while True:
                    pass
            except:  # a bare except catches the timer's exception too
                pass
    """), limits=RewardLimits(memory_mb=512, cpu_s=60, call_s=0.05, batch_margin_s=1.0))
    assert str(err) == "reward_function did not finish 1 calls within 1.05 s and was stopped"


def test_an_endless_loop_at_module_level_is_stopped():
    with pytest.raises(RewardFunctionError, match=r"the reward function's module used more than 1 s"):
        RewardSandbox("while True:\n    pass\n", CONSTANTS, QUICK)


def test_a_2_gb_allocation_fails_cleanly():
    err = fails(fn("block = [0.0] * (256 * 1024 ** 2)  # 2 GiB of pointers\nreturn 1.0"))
    assert str(err) == "reward_function ran out of memory (the limit is 512 MiB) (line 2)"
    err = fails(fn("return float(np.ones((16384, 16384)).sum())", header="import numpy as np\n"))
    assert str(err) == "reward_function ran out of memory (the limit is 512 MiB) (line 3)"


def test_the_cpu_budget_of_the_worker_ends_it():
    limits = RewardLimits(memory_mb=512, cpu_s=1, call_s=0.5, batch_margin_s=5.0)
    err = fails(fn("total = 0\nfor i in range(2_000_000):\n    total += i\nreturn 1.0"),
                [step()] * 40, limits)
    assert str(err) == "reward_function used up the worker's 1 s of CPU time and was stopped"


@pytest.mark.parametrize(("body", "message"), [
    ("return 'fast'", "reward_function returned 'fast' (a str), not a number"),
    ("return params['all_wheels_on_track']", "reward_function returned True (a bool), not a number"),
    ("return float('nan')", "reward_function returned nan: the reward must be a finite number"),
    ("return 1e308 * 10", "reward_function returned inf: the reward must be a finite number"),
])
def test_a_non_number_is_refused(body, message):
    assert str(fails(fn(body))) == message


@pytest.mark.parametrize(("source", "message"), [
    (fn("return float(open('/etc/passwd').read() != '')"),
     "line 2: 'open' is not available: a reward function has no file access"),
    ("import os\n" + fn("return 1.0"), "line 1: import of 'os' is not allowed"),
    (fn("import socket\nreturn 1.0"), "line 2: import of 'socket' is not allowed"),
    (fn("return len(().__class__.__bases__[0].__subclasses__())"),
     "line 2: the attribute '__subclasses__' is not allowed"),
    ("def reward_function(params)\n    return 1.0\n", "the reward function does not parse"),
    ("def reward(params):\n    return 1.0\n", "defines no function reward_function(params)"),
])
def test_forbidden_code_is_refused_when_loaded(source, message):
    """Each refusal of tests/training/test_reward_rules.py, seen through the sandbox
    (subprocess, __import__, eval, exec and getattr are covered there, without a worker)."""
    with pytest.raises(RewardFunctionError) as caught:
        RewardSandbox(source, CONSTANTS, QUICK)
    assert message in str(caught.value)


def test_numpy_file_functions_that_pass_the_rules_still_touch_no_file(tmp_path):
    """The rules allow numpy, which can read and write files: the worker's confinement
    refuses both (nothing readable, no new file descriptor), and no file appears."""
    secret = tmp_path / "secret.txt"
    secret.write_text("42")
    secret.chmod(0o644)
    tmp_path.chmod(0o777)
    err = fails(fn(f"return float(np.loadtxt({str(secret)!r}))", header="import numpy as np\n"))
    assert str(err).startswith("reward_function raised")
    assert "PermissionError" in str(err) or "OSError" in str(err) or "Too many open files" in str(err)
    target = tmp_path / "pwned.npy"
    err = fails(fn(f"np.save({str(target)!r}, np.zeros(3))\nreturn 1.0", header="import numpy as np\n"))
    assert str(err).startswith("reward_function raised")
    assert not target.exists()


def test_after_a_failure_the_sandbox_is_closed_and_says_why():
    sandbox = RewardSandbox(fn("return 1.0 if params['steps'] < 5 else 'x'"), CONSTANTS, QUICK)
    try:
        assert sandbox.reward(step(steps=1)) == 1.0
        with pytest.raises(RewardFunctionError) as first:
            sandbox.rewards([step(steps=1), step(steps=7)])
        assert first.value.index == 1
        assert sandbox._proc.poll() is not None  # the worker is gone
        with pytest.raises(RewardFunctionError) as again:
            sandbox.reward(step(steps=1))
        assert again.value is first.value
    finally:
        sandbox.close()
