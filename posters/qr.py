"""The QR code of a string, as crisp square modules of a whole number of pixels."""

from __future__ import annotations

import qrcode
from PIL import Image

from posters.templates import RGB

QUIET_ZONE_MODULES = 4
MIN_MODULE_PX = 3  # below this, phone cameras start to misread modules
# The standard lets the encoder pick any of the 8 masks; the library's "best"
# one is chosen by trying all 8 in pure Python, which costs more than encoding
# the whole poster as JPEG. Every mask decodes, so one is fixed.
MASK_PATTERN = 0


class QrTooDense(ValueError):
    """The text needs more modules than fit the space at a scannable size."""


def qr_matrix(text: str) -> list[list[bool]]:
    """Rows of modules, True for dark, quiet zone included."""
    code = qrcode.QRCode(
        version=1,  # grown to fit by make(); left unset, the library would size the data twice
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=QUIET_ZONE_MODULES,
        mask_pattern=MASK_PATTERN,
    )
    code.add_data(text)
    code.make(fit=True)
    return code.get_matrix()


def qr_image(text: str, max_side: int, dark: RGB, light: RGB) -> Image.Image:
    """An RGB image as large as fits in `max_side` px with every module the
    same whole number of pixels. Opaque, so that it is pasted by plain copy
    rather than blended through a mask, which costs far more."""
    matrix = qr_matrix(text)
    modules = len(matrix)
    module_px = max_side // modules
    if module_px < MIN_MODULE_PX:
        raise QrTooDense(f"{len(text)} characters need {modules} modules: too many for a {max_side} px code")
    one_pixel_per_module = Image.frombytes("P", (modules, modules), b"".join(map(bytes, matrix)))
    one_pixel_per_module.putpalette(light + dark)
    side = modules * module_px
    return one_pixel_per_module.convert("RGB").resize((side, side), Image.Resampling.NEAREST)
