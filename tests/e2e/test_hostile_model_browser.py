"""Issue 18 in the browser: a racer uploads a DeepRacer model whose graph writes a file;
the racer's page shows it ``invalid`` with the op named, live."""

from __future__ import annotations

import os
from pathlib import Path

from drem.demo.live_server import LiveServer
from tests.car_client import model_factories as mf
from tests.e2e.pages import login


def test_hostile_model_ends_invalid_with_the_op_named(page, live_server: LiveServer,
                                                      console_errors, tmp_path: Path) -> None:
    racer = live_server.create_user("racer")
    model_file = mf.write_deepracer_model(tmp_path / "fast-lap.tar.gz",
                                          write_file_to="/tmp/drem-pwned")
    login(page, racer)
    page.goto("/models/")
    page.set_input_files("#file-input", str(model_file))
    item = page.locator("#upload-list li", has_text="fast-lap.tar.gz")
    item.locator(".state", has_text="invalid").wait_for(timeout=60_000)
    state = item.locator(".state").inner_text()
    assert "TensorFlow op 'WriteFile'" in state and "not allowed on the cars" in state
    page.reload()
    row = page.locator("tr", has_text="fast-lap.tar.gz")
    assert "invalid" in row.inner_text() and "'WriteFile'" in row.inner_text()
    shot = Path(os.environ.get("DREM_SHOT_DIR", tmp_path)) / "hostile-model-invalid.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not Path("/tmp/drem-pwned").exists()
    assert console_errors == []
