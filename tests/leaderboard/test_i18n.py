"""The translation files: every language has every key (a missing key fails here), the
placeholders match English, and the pages follow ``?lang=``."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from drem.leaderboard import i18n

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _file(lang: str) -> dict:
    return json.loads((i18n.TRANSLATIONS / f"{lang}.json").read_text(encoding="utf-8"))


def test_one_file_per_language_and_no_other():
    assert sorted(p.stem for p in i18n.TRANSLATIONS.glob("*.json")) == sorted(i18n.LANGUAGES)
    assert set(i18n.LANGUAGES) >= {"en", "de", "es", "fr", "ja"}


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_key_in_every_language(lang):
    english, other = _file("en"), _file(lang)
    assert sorted(set(english) - set(other)) == [], f"{lang}.json misses keys"
    assert sorted(set(other) - set(english)) == [], f"{lang}.json has keys English lacks"
    for key, text in english.items():
        assert other[key].strip(), f"{lang}.json: {key} is empty"
        assert set(PLACEHOLDER.findall(other[key])) == set(PLACEHOLDER.findall(text)), (lang, key)


def test_a_missing_key_is_found(tmp_path, monkeypatch):
    """The check above fails on a file that lacks a key (here: German without best_lap)."""
    broken = _file("de")
    del broken["best_lap"]
    assert sorted(set(_file("en")) - set(broken)) == ["best_lap"]


def test_numbers_and_dates_follow_the_language():
    assert i18n.fmt_ms(83456, "en") == "1:23.456"
    assert i18n.fmt_ms(83456, "de") == "1:23,456"
    assert i18n.fmt_ms(9005, "fr") == "9,005"
    assert i18n.fmt_ms(None) == "–"
    assert i18n.fmt_number(0.25, "es") == "0,25"
    day = date(2026, 11, 22)
    assert [i18n.fmt_date(day, lang) for lang in ("en", "de", "fr", "ja")] == \
        ["22 Nov 2026", "22.11.2026", "22/11/2026", "2026年11月22日"]
    assert i18n.t("de", "say_lap", racer="anna", n=3, time="8,5") == "anna, Runde 3, 8,5 Sekunden"
    assert i18n.choose("JA") == "ja" and i18n.choose("xx") == "en" and i18n.choose(None) == "en"


def test_pages_follow_lang(client, factory):
    ev = factory.event()
    landing = client.get(f"/e/{ev['id']}?lang=fr").get_data(as_text=True)
    assert "Comment envoyer votre modèle" in landing and 'lang="fr"' in landing
    board = client.get(f"/events/{ev['id']}/leaderboard?lang=ja").get_data(as_text=True)
    assert '<html lang="ja">' in board and "日本語" in board
    # an unknown language is English, not an error
    assert "How to upload your model" in client.get(f"/e/{ev['id']}?lang=xx").get_data(as_text=True)
