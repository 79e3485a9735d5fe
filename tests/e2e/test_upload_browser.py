"""The racer upload portal end to end: real login page, real gunicorn + gevent server,
real clamd, headless Chromium; and the upload endpoint's limits over plain HTTP."""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path

import requests

from drem.demo.live_server import LiveServer, RssSampler
from tests.e2e.pages import login
from tests.models_mgr import factories as f

MIB = 1024 * 1024

# Records every text the upload list's status badges show, in order, from before the
# upload starts: proves the states changed in place (no reload) and in which order.
WATCH_STATES = """() => {
  window.__shownStates = [];
  window.__noReload = "still the same page";
  new MutationObserver((records) => {
    for (const r of records) {
      const el = r.target.nodeType === 1 ? r.target : r.target.parentElement;
      const state = el && el.closest ? el.closest("#upload-list li .state") : null;
      if (state) window.__shownStates.push(state.textContent);
    }
  }).observe(document.getElementById("upload-list"),
             {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def _login(page, user: dict) -> None:
    """Sign in through the real login form as a racer."""
    login(page, user)
    assert f"{user['username']} (racer)" in page.inner_text("nav")


def _open_models_page(page) -> list[dict]:
    """Open /models/ and wait until its Socket.IO connection joined ``/models``.
    Returns the list that collects every Socket.IO event the page receives."""
    pushed: list[dict] = []

    def on_frame(payload) -> None:
        text = payload if isinstance(payload, str) else payload.decode(errors="replace")
        if text.startswith('42/models,'):
            name, body = json.loads(text[len('42/models,'):])
            pushed.append({"event": name, **body})

    with page.expect_websocket(lambda ws: "/socket.io/" in ws.url) as ws_info:
        page.goto("/models/")
    ws = ws_info.value
    ws.on("framereceived", on_frame)
    ws.wait_for_event("framereceived", lambda p: str(p).startswith("40/models"))
    page.evaluate(WATCH_STATES)
    return pushed


def _wait_pushed(pushed: list[dict], model_id: int, status: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(p["id"] == model_id and p["status"] == status for p in pushed):
        assert time.monotonic() < deadline, f"no {status!r} push for model {model_id}: {pushed}"
        time.sleep(0.05)


def test_racer_uploads_in_browser_and_sees_scan_live(page, live_server: LiveServer, console_errors,
                                                    tmp_path: Path) -> None:
    racer = live_server.create_user("racer")
    # A real-sized DeepRacer export (8 MB model.pb): the scan takes long enough to be seen.
    model_file = f.deepracer_tar_gz(tmp_path, "my-first-model.tar.gz", pb=os.urandom(8 * MIB))
    _login(page, racer)
    pushed = _open_models_page(page)
    assert "Up to 500 MB each" in page.inner_text("#upload-card")

    page.set_input_files("#file-input", str(model_file))

    item = page.locator("#upload-list li", has_text="my-first-model.tar.gz")
    item.locator(".state", has_text="available").wait_for(timeout=30_000)
    model_id = int(item.get_attribute("data-model-id"))

    # It got there live: the page was not reloaded, the badge went through scanning to
    # available, and both states came as Socket.IO pushes for this model.
    assert page.evaluate("window.__noReload") == "still the same page"
    shown = page.evaluate("window.__shownStates")
    assert any(s.startswith("scanning") for s in shown), shown
    first_available = next(i for i, s in enumerate(shown) if s.startswith("available"))
    assert all(not s.startswith("scanning") for s in shown[first_available:]), shown
    statuses = [p["status"] for p in pushed if p["id"] == model_id and p["event"] == "model_status"]
    assert "scanning" in statuses and statuses[-1] == "available", statuses
    assert statuses.index("scanning") < statuses.index("available"), statuses
    assert item.locator("progress").evaluate("el => el.value") == 100

    model = live_server.model(model_id, racer["token"])
    assert model["status"] == "available" and model["format"] == "deepracer"
    assert model["size"] == model_file.stat().st_size and model["owner_id"] == racer["id"]

    shot = tmp_path / "upload-available.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.inner_text("main")
    assert "My models" in text and "my-first-model.tar.gz" in text and "available" in text
    assert "failed" not in page.inner_text("#upload-list")
    assert console_errors == []


def test_eicar_dropped_on_the_page_ends_quarantined(page, live_server: LiveServer, console_errors,
                                                    tmp_path: Path) -> None:
    racer = live_server.create_user("racer")
    _login(page, racer)
    pushed = _open_models_page(page)

    # Drag and drop: a real drop event carrying the EICAR test file named model.tar.gz.
    transfer = page.evaluate_handle(
        """(bytes) => {
             const dt = new DataTransfer();
             dt.items.add(new File([new Uint8Array(bytes)], "model.tar.gz", {type: "application/gzip"}));
             return dt;
           }""", list(f.EICAR))
    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": transfer})
    assert "over" in page.get_attribute("#dropzone", "class")
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})

    item = page.locator("#upload-list li", has_text="model.tar.gz")
    item.locator(".state", has_text="quarantined").wait_for(timeout=30_000)
    model_id = int(item.get_attribute("data-model-id"))
    _wait_pushed(pushed, model_id, "quarantined")
    assert page.evaluate("window.__noReload") == "still the same page"
    state = item.locator(".state").inner_text()
    assert "virus was found" in state and "eicar" in state.lower(), state
    assert "over" not in page.get_attribute("#dropzone", "class")

    model = live_server.model(model_id, racer["token"])
    assert model["status"] == "quarantined" and "eicar" in model["virus_signature"].lower()
    assert list((live_server.storage_root / "quarantine").rglob("*.tar.gz"))
    assert not list((live_server.storage_root / "models" / str(racer["id"])).rglob("*"))
    page.screenshot(path=str(tmp_path / "upload-quarantined.png"), full_page=True)

    # The server-rendered list says the same after a reload; no download link for a racer.
    page.reload()
    row = page.locator(f"#models-table tr[data-model-id='{model_id}']")
    assert "quarantined" in row.inner_text() and "virus was found" in row.inner_text()
    assert row.locator("a", has_text="Download").count() == 0
    assert console_errors == []


def test_status_pushed_before_the_upload_answer_is_not_lost(page, live_server: LiveServer, console_errors,
                                                             tmp_path: Path) -> None:
    """A small file is scanned at once: its pushes may beat the upload's own HTTP answer.
    Hold the answer back until the final push has reached the browser; the page must
    still end on "available", not stay on the answer's "uploaded"."""
    racer = live_server.create_user("racer")
    _login(page, racer)
    pushed = _open_models_page(page)
    held: dict = {}
    model_file = f.deepracer_tar_gz(tmp_path, "quick.tar.gz")

    def hold_answer(route) -> None:
        # Playwright cannot forward an XHR's File body, so the same bytes are given again.
        response = route.fetch(post_data=model_file.read_bytes())
        assert response.status == 201, (response.status, response.text()[:300])
        held["id"] = model_id = response.json()["id"]
        deadline = time.monotonic() + 30
        while not any(p["id"] == model_id and p["status"] == "available" for p in pushed):
            assert time.monotonic() < deadline, pushed
            page.wait_for_timeout(50)  # lets Playwright deliver the websocket frames
        page.wait_for_timeout(200)
        route.fulfill(response=response)

    page.route("**/api/models?filename=*", hold_answer)
    page.set_input_files("#file-input", str(model_file))
    item = page.locator("#upload-list li", has_text="quick.tar.gz")
    item.locator(".state", has_text="available").wait_for(timeout=30_000)
    assert int(item.get_attribute("data-model-id")) == held["id"]
    assert console_errors == []


def test_operator_finds_a_copied_model_by_racer_name_and_deletes_it(page, live_server: LiveServer, console_errors,
                                                                     tmp_path: Path) -> None:
    """Issue 16: an operator searches the model list by racer name, opens the model's
    page (metadata, "same model as" the friend's upload) and deletes it."""
    friend, copier = live_server.create_user("racer"), live_server.create_user("racer")
    operator = live_server.create_user("operator")
    weights = f.tiny_model_pb(weights=os.urandom(2048))  # one model.pb in two different archives
    ids = {}
    for racer, name, metadata in ((friend, "friend-v1.tar.gz", f.discrete_metadata()),
                                  (copier, "totally-mine.tar.gz", f.discrete_metadata(version="4"))):
        resp = live_server.api("POST", "/api/models", token=racer["token"], params={"filename": name},
                               data=f.deepracer_tar_gz(tmp_path, name, pb=weights, metadata=metadata).read_bytes())
        assert resp.status_code == 201, resp.text
        ids[name] = live_server.wait_for_model(resp.json()["id"], ("available",))["id"]

    login(page, operator)
    page.goto("/models/")
    page.fill("#f-q", copier["username"].upper())  # any case
    page.click("#model-filters button[type=submit]")
    rows = page.locator("#models-table tr[data-model-id]")
    rows.first.wait_for()
    assert rows.count() == 1 and copier["username"] in rows.first.inner_text()
    assert "1 model" in page.inner_text("#models-total")

    page.click("#models-table a.model-link")
    page.wait_for_url(f"**/models/{ids['totally-mine.tar.gz']}")
    assert page.inner_text("#car-type") == "AWS DeepRacer"
    assert page.inner_text("#model-sensors") == "FRONT_FACING_CAMERA"
    assert page.inner_text("#model-algorithm") == "clipped_ppo"
    assert page.locator("#action-space tr").count() > 1
    same = page.locator("#same-models")
    assert friend["username"] in same.inner_text() and "friend-v1.tar.gz" in same.inner_text()
    page.screenshot(path=str(tmp_path / "model-detail.png"), full_page=True)

    dialogs: list[str] = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    with page.expect_navigation():
        page.click("#delete-button")
    assert dialogs and "totally-mine.tar.gz" in dialogs[0] and copier["username"] in dialogs[0]
    assert "model deleted" in page.inner_text("main")
    gone = live_server.api("GET", f"/api/models/{ids['totally-mine.tar.gz']}", token=operator["token"])
    assert gone.status_code == 404
    assert not list((live_server.storage_root / "models" / str(copier["id"])).rglob("*.*"))
    assert live_server.model(ids["friend-v1.tar.gz"])["status"] == "available"
    assert console_errors == []


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_600_mb_streamed_upload_is_refused_with_413(live_server: LiveServer) -> None:
    racer = live_server.create_user("racer")
    before = _files(live_server.storage_root)
    block = os.urandom(MIB)
    sent = 0

    def body():  # made on the fly: requests sends a generator chunked, never all in memory
        nonlocal sent
        for _ in range(600):
            sent += len(block)
            yield block

    with RssSampler(live_server.worker_pid()) as rss:
        resp = requests.post(live_server.url + "/api/models", params={"filename": "huge.tar.gz"}, data=body(),
                             headers={"Authorization": f"Bearer {racer['token']}"}, timeout=120)
    assert resp.status_code == 413, resp.text[:500]
    assert resp.json()["error"] == "the file is larger than the 500 MB limit"
    assert sent > 500 * MIB  # the limit was crossed while streaming, not guessed up front
    assert rss.growth < 64 * MIB, f"worker RSS grew by {rss.growth / MIB:.0f} MB"
    assert _files(live_server.storage_root) == before
    assert not list((live_server.storage_root / ".tmp").iterdir())
    listing = live_server.api("GET", "/api/models", token=racer["token"]).json()
    assert listing["total"] == 0
    # The server is still healthy and serves the next request.
    assert live_server.api("GET", "/healthz").status_code == 200


def test_upload_with_declared_length_over_limit_is_refused_up_front(live_server: LiveServer) -> None:
    racer = live_server.create_user("racer")
    before = _files(live_server.storage_root)
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=30)
    try:
        # Announce 501 MB but send only 1 KB: the answer must come from the header alone.
        conn.putrequest("POST", "/api/models?filename=huge.tar.gz")
        conn.putheader("Authorization", f"Bearer {racer['token']}")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(501 * MIB))
        conn.endheaders()
        conn.send(b"x" * 1024)
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 413 and body["error"] == "the file is 525 MB; the limit is 500 MB", body
    assert _files(live_server.storage_root) == before


def test_upload_without_login_is_401(live_server: LiveServer, tmp_path: Path) -> None:
    before = _files(live_server.storage_root)
    path = f.deepracer_tar_gz(tmp_path)
    resp = requests.post(live_server.url + "/api/models", params={"filename": "model.tar.gz"},
                         data=path.read_bytes(), headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert resp.status_code == 401, resp.text
    assert "error" in resp.json()
    bad = requests.post(live_server.url + "/api/models", params={"filename": "model.tar.gz"},
                        data=path.read_bytes(), headers={"Authorization": "Bearer drem_not-a-token"}, timeout=30)
    assert bad.status_code == 401, bad.text
    assert _files(live_server.storage_root) == before
