"""Stand-in images for mini-program codes: a plain QR code of the scene, so tests can decode it."""

from __future__ import annotations

import io

import qrcode

_BORDER_MODULES = 4


def render_code_png(scene: str, width: int) -> bytes:
    """A PNG about `width` pixels square whose QR code reads `scene`."""
    code = qrcode.QRCode(border=_BORDER_MODULES)
    code.add_data(scene)
    code.make(fit=True)
    code.box_size = max(1, width // (code.modules_count + 2 * _BORDER_MODULES))
    image = code.make_image().get_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
