"""Stand-in avatar pictures, one per sandbox user and the same on every run: a disc of colour
fading to white, so a poster that draws it is told apart from one that draws the initial."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageOps

AVATAR_SIDE = 132  # the size WeChat's avatar URLs ending in /132 give


def render_avatar_png(user: str) -> bytes:
    colour = tuple(hashlib.sha256(user.encode()).digest()[:3])
    fade = Image.radial_gradient("L").resize((AVATAR_SIDE, AVATAR_SIDE))
    picture = ImageOps.colorize(fade, black=colour, white=(255, 255, 255))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
