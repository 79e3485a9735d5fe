"""QR codes as inline SVG (made here with the ``qrcode`` package: nothing is fetched)."""

from __future__ import annotations

import io

import qrcode
from qrcode.image.svg import SvgPathImage


def qr_svg(data: str, box_size: int = 10, border: int = 2) -> str:
    """An ``<svg>`` element (text, without the XML declaration, so a page can inline it) of a
    QR code that encodes ``data`` (e.g. an absolute URL); ``box_size`` is the size of one
    module in SVG units, ``border`` the quiet zone in modules."""
    out = io.BytesIO()
    qrcode.make(data, image_factory=SvgPathImage, border=border, box_size=box_size).save(out)
    text = out.getvalue().decode()
    return text.split("?>", 1)[1].lstrip() if text.startswith("<?xml") else text
