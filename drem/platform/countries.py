"""Countries: ISO 3166-1 alpha-2 codes with English names and flag emoji (from ``pycountry``).

The one list every country field uses (sign-up, the desk, the account page, the CSV
import, the walk-up form). Stored values are the two-letter code in upper case (``"DE"``).
"""

from __future__ import annotations

from functools import lru_cache

import pycountry

from drem.platform.errors import ServiceError


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """``{code: English name}``: the common name where ISO has one ("Taiwan", "Bolivia")."""
    return {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}


def flag(code: str | None) -> str:
    """The flag emoji of a two-letter code (two regional-indicator letters), "" for None."""
    code = (code or "").upper()
    if len(code) != 2 or not code.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(ch) - ord("A")) for ch in code)


def country_name(code: str | None) -> str | None:
    """The English name of an ISO code (``"DE"`` -> ``"Germany"``), None when unknown."""
    return _countries().get((code or "").upper())


def country_label(code: str | None) -> str:
    """``"🇩🇪 Germany (DE)"`` for a known code, the code itself for an unknown stored one."""
    name = country_name(code)
    return f"{flag(code)} {name} ({code.upper()})" if name else (code or "")


def country_choices() -> list[tuple[str, str]]:
    """``[(code, "🇩🇪 Germany"), …]`` sorted by name: the options of a country ``<select>``."""
    return sorted(((code, f"{flag(code)} {name}") for code, name in _countries().items()),
                  key=lambda item: _countries()[item[0]].lower())


def check_country(value, field: str = "country_code", *, required: bool = False,
                  names: bool = False) -> str | None:
    """The ISO 3166-1 alpha-2 code (upper case) for ``value``.

    ``value`` is a two-letter code in any case, or with ``names`` also an English name or
    an alpha-3 code (``"Germany"``, ``"DEU"``; for CSV files typed by people). Blank gives
    None unless ``required``. Raises ServiceError(field) for an unknown country or a
    missing required one.
    """
    raw = value.strip() if isinstance(value, str) else value
    if raw is None or raw == "":
        if required:
            raise ServiceError("choose a country", field)
        return None
    if not isinstance(raw, str):
        raise ServiceError("country must be text (an ISO 3166-1 code such as DE)", field)
    if raw.upper() in _countries():
        return raw.upper()
    if names:
        try:
            return pycountry.countries.lookup(raw).alpha_2
        except LookupError:
            pass
    raise ServiceError(f"unknown country {raw[:60]!r}: use an ISO 3166-1 code such as DE"
                       + (" or an English country name" if names else ""), field)
