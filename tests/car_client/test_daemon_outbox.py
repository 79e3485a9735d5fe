"""The SQLite outbox and the lap log (no network)."""

import os
import subprocess
import sys
import time

from car_client.daemon.outbox import MAX_REFUSALS, LapLog, Outbox


def test_entries_come_out_oldest_first_and_leave_only_when_deleted(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite")
    first = box.put("lap", {"lap_id": "a", "lap_time_ms": 1000}, entry_id="a")
    second = box.put("command_result", {"result_id": "r", "status": "done"})
    third = box.put("lap", {"lap_id": "b"}, entry_id="b")
    assert len(second) == 32 and int(second, 16) >= 0  # uuid4 hex made on the car
    assert [e.id for e in box.ready()] == [first, second, third]
    assert box.ready()[0].payload == {"lap_id": "a", "lap_time_ms": 1000}
    box.put("lap", {"lap_id": "a", "changed": True}, entry_id="a")  # idempotent
    assert len(box) == 3
    box.delete(second)
    assert [e.id for e in box.ready()] == [first, third]


def test_entries_survive_a_process_that_dies(tmp_path):
    path = tmp_path / "outbox.sqlite"
    code = (
        "import os; from car_client.daemon.outbox import Outbox\n"
        f"b = Outbox({str(path)!r})\n"
        "b.put('lap', {'lap_id': 'x1'}, entry_id='x1')\n"
        "b.put('lap', {'lap_id': 'x2'}, entry_id='x2')\n"
        "os._exit(9)\n"  # no close, no clean exit
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=os.getcwd(), timeout=30)
    assert proc.returncode == 9
    assert [e.id for e in Outbox(path).ready()] == ["x1", "x2"]


def test_transient_refusals_back_off_then_drop_after_the_limit(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.put("lap", {"lap_id": "a"}, entry_id="a")
    box.put("lap", {"lap_id": "b"}, entry_id="b")
    assert box.refused("a", "database busy") is False
    # "a" waits (2 s) and does not block "b"
    assert [e.id for e in box.ready()] == ["b"]
    assert [e.id for e in box.ready(now=time.time() + 2.5)] == ["a", "b"]
    for _ in range(MAX_REFUSALS - 2):
        assert box.refused("a", "database busy") is False
    assert box.refused("a", "database busy") is True
    assert [e.id for e in box.all()] == ["b"]
    assert box.rejected() == [{"id": "a", "kind": "lap", "payload": {"lap_id": "a"},
                               "error": "database busy"}]


def test_permanent_refusal_drops_at_once_and_retry_true_never_drops(tmp_path):
    box = Outbox(tmp_path / "o.sqlite")
    box.put("lap", {"lap_id": "a"}, entry_id="a")
    box.put("lap", {"lap_id": "b"}, entry_id="b")
    assert box.refused("a", "not your car", retry=False) is True
    for _ in range(MAX_REFUSALS + 3):
        assert box.refused("b", "storage busy", retry=True) is False
    assert [e.id for e in box.all()] == ["b"]
    assert [r["id"] for r in box.rejected()] == ["a"]


def test_lap_log_appends_and_skips_a_torn_last_line(tmp_path):
    log = LapLog(tmp_path / "laps.jsonl")
    log.append({"lap_id": "a", "lap_time_ms": 10432})
    log.append({"lap_id": "b", "lap_time_ms": 9876})
    with open(log.path, "a") as fh:
        fh.write('{"lap_id": "c", "lap_ti')  # power cut mid-write
    assert [r["lap_id"] for r in LapLog(log.path).read()] == ["a", "b"]
