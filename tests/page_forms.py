"""Helpers for tests of the organizer pages: sign a Flask test client in through the
real login form and read the session's CSRF token; read the audit log through the API."""

from __future__ import annotations

from tests.factories import csrf_from


def signed_in(client, factory, role: str, **user_fields) -> tuple[dict, str]:
    """Sign ``client`` in as a new user of ``role``; returns (user, CSRF token of its session)."""
    user = factory.user(role, **user_fields)
    factory.login(client, user)
    return user, csrf_from(client.get("/account").get_data(as_text=True))


def audit(client, headers: dict, action: str) -> list[dict]:
    """The audit entries of ``action``, newest first (``GET /api/audit``, admin ``headers``)."""
    resp = client.get(f"/api/audit?action={action}", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()["entries"]


def same_entry(a: dict, b: dict, *ignore: str) -> bool:
    """True when two audit entries record the same change (``action``, ``target_type``, the
    details' keys and values but ``ignore``), whoever made them and on whichever row."""
    def shape(e: dict) -> tuple:
        return e["action"], e["target_type"], {k: v for k, v in e["details"].items() if k not in ignore}
    return shape(a) == shape(b)
