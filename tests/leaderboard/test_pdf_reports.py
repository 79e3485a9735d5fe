"""The printable PDFs (WeasyPrint): rendered for a known event, then read back with pypdf:
every racer and every ranked time is in the text; paper sizes; refusals."""

from __future__ import annotations

import io
import subprocess

import pytest
from pypdf import PdfReader

from tests.leaderboard.builders import Races

A4 = (595, 842)  # points, rounded
LETTER = (612, 792)


@pytest.fixture
def known(app, factory):
    """Two tracks, best lap, resets allowed 0:
    track 1: asa 8123, 9001 (1 reset: penalised) -> 8123; bruno 8456 -> 8456;
    track 2: chloe 7999 -> 7999.  Combined: chloe 7999, asa 8123, bruno 8456."""
    races = Races(app)
    ev = factory.event(tracks=2, resets_allowed_per_lap=0, name="Grand Prix Nørd — Köln")
    t1, t2 = (t["id"] for t in ev["tracks"])
    ids = {"event": ev["id"]}
    for name, cc in (("asa", "SE"), ("bruno", "BR"), ("chloe", "FR")):
        ids[name + "_user"] = factory.user("racer", name, country_code=cc)  # with a password
        ids[name] = ids[name + "_user"]["id"]
    races.race(ev["id"], t1, ids["asa"], [8123, (9001, 1)])
    races.race(ev["id"], t1, ids["bruno"], [8456])
    races.race(ev["id"], t2, ids["chloe"], [7999])
    return ids


def _pdf(client, url) -> PdfReader:
    resp = client.get(url)
    assert resp.status_code == 200, resp.data[:300]
    assert resp.mimetype == "application/pdf" and resp.data.startswith(b"%PDF")
    assert "attachment" in resp.headers["Content-Disposition"]
    return PdfReader(io.BytesIO(resp.data))


def _text(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def _size(reader: PdfReader) -> tuple[int, int]:
    box = reader.pages[0].mediabox
    return round(float(box.width)), round(float(box.height))


@pytest.fixture
def organiser(client, factory):
    factory.login(client, factory.user("admin"))
    return client


def test_results_hold_every_racer_and_time(organiser, known):
    reader = _pdf(organiser, f"/api/events/{known['event']}/results.pdf")
    text = _text(reader)
    assert _size(reader) == A4
    for name in ("asa", "bruno", "chloe", "Grand Prix Nørd — Köln", "Combined"):
        assert name in text, name
    for time in ("8.123", "8.456", "7.999", "+0.333", "+0.124"):
        assert time in text, time
    # asa: 1 valid of 2 laps, 1 reset, 1 penalised lap
    line = next(x for x in text.splitlines() if "asa" in x and "8.123" in x)
    assert line.split()[-4:] == ["1/2", "1", "1", "1"], line  # laps, resets, penalised, runs


def test_results_with_pdftotext_letter_and_german(organiser, known):
    resp = organiser.get(f"/api/events/{known['event']}/results.pdf?paper=letter&lang=de")
    assert _size(PdfReader(io.BytesIO(resp.data))) == LETTER
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=resp.data, capture_output=True,
                          check=True).stdout.decode()
    assert "Ergebnisse" in text and "Gesamt" in text and "8,123" in text and "chloe" in text


def test_podium_certificates_labels(organiser, known, factory):
    podium = _text(_pdf(organiser, f"/api/events/{known['event']}/podium.pdf"))
    assert all(x in podium for x in ("Podium", "asa", "bruno", "chloe", "7.999"))
    certs = _pdf(organiser, f"/api/events/{known['event']}/certificates.pdf")
    assert len(certs.pages) == 3  # one per racer of the combined board
    assert "chloe" in certs.pages[0].extract_text() and "placed 1 of 3" in certs.pages[0].extract_text()
    one = _pdf(organiser, f"/api/events/{known['event']}/certificates.pdf?racer={known['bruno']}")
    assert len(one.pages) == 1 and "bruno" in _text(one) and "placed 3 of 3" in _text(one)
    from drem.fleet.models import Car
    from drem.platform.extensions import db
    with organiser.application.app_context():
        db.session.add_all([Car(hostname="deepracer-07"), Car(hostname="donkey-2")])
        db.session.commit()
    labels = _text(_pdf(organiser, f"/api/events/{known['event']}/labels.pdf?paper=letter"))
    assert "deepracer-07" in labels and "donkey-2" in labels and "/fleet/#car-" in labels


def test_pdf_refusals(client, organiser, known, factory):
    url = f"/api/events/{known['event']}"
    resp = organiser.get(f"{url}/results.pdf?paper=a3")
    assert resp.status_code == 400 and "a4, letter" in resp.get_json()["error"]
    assert organiser.get(f"{url}/certificates.pdf?racer=abc").status_code == 400
    outsider = factory.user("racer", "outsider", password=None)["id"]
    resp = organiser.get(f"{url}/certificates.pdf?racer={outsider}")
    assert resp.status_code == 404 and "no result" in resp.get_json()["error"]
    assert organiser.get("/api/events/999999/results.pdf").status_code == 404
    assert organiser.get(f"{url}/other.pdf").status_code == 404
    anonymous = client.application.test_client()
    assert anonymous.get(f"{url}/results.pdf").status_code in (401, 302)


def test_a_racer_downloads_their_own_certificate(client, known, factory):
    url = f"/api/events/{known['event']}/my-certificate.pdf"
    assert client.get(url).status_code in (401, 302)  # not signed in
    factory.login(client, known["bruno_user"])
    text = _text(_pdf(client, url))
    assert "bruno" in text and "chloe" not in text and "placed 3 of 3" in text
    assert b"my-certificate" in client.get(f"/e/{known['event']}").data
    other = factory.event()
    resp = client.get(f"/api/events/{other['id']}/my-certificate.pdf")
    assert resp.status_code == 404 and "no result" in resp.get_json()["error"]
