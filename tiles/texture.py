"""Textured glb content: an encoded image (PNG/JPEG) embedded in the binary chunk, with its
sampler, texture and a material that draws it, and ``TEXCOORD_0`` for the primitive.

The texture is bound with clamp-to-edge wrapping and linear filtering; mipmaps are asked for
only when both sides are powers of two (WebGL 1 cannot mipmap other sizes)."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tiles.errors import TilesError
from tiles.glb import ARRAY_BUFFER, GlbBuilder

MIME_TYPES = ("image/png", "image/jpeg")
LINEAR = 9729
LINEAR_MIPMAP_LINEAR = 9987
CLAMP_TO_EDGE = 33071
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(data: bytes, mime: str) -> tuple[int, int]:
    """Width and height (pixels) of a PNG or JPEG image, read from its header."""
    if mime == "image/png":
        if not data.startswith(PNG_SIGNATURE) or len(data) < 24:
            raise TilesError("texture is not a PNG image")
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if mime == "image/jpeg":
        i = 2
        if not data.startswith(b"\xff\xd8"):
            raise TilesError("texture is not a JPEG image")
        while i + 9 < len(data):
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):  # start of frame: height, width
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
        raise TilesError("JPEG texture without a start-of-frame marker")
    raise TilesError(f"texture type must be one of {MIME_TYPES}, got {mime!r}")


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def add_texture(
    builder: GlbBuilder, document: dict[str, Any], image: bytes, mime: str, name: str
) -> dict[str, Any]:
    """Store `image` in `builder`, add ``images``/``samplers``/``textures`` to `document` and
    return a material (unlit-looking: no metal, rough) whose base colour is the texture."""
    width, height = image_size(image, mime)
    mipmaps = _power_of_two(width) and _power_of_two(height)
    view = builder.add_buffer_view(image)
    document["images"] = [{"bufferView": view, "mimeType": mime}]
    document["samplers"] = [
        {
            "magFilter": LINEAR,
            "minFilter": LINEAR_MIPMAP_LINEAR if mipmaps else LINEAR,
            "wrapS": CLAMP_TO_EDGE,
            "wrapT": CLAMP_TO_EDGE,
        }
    ]
    document["textures"] = [{"sampler": 0, "source": 0}]
    return {
        "name": name,
        "pbrMetallicRoughness": {
            "baseColorTexture": {"index": 0},
            "metallicFactor": 0.0,
            "roughnessFactor": 1.0,
        },
        "doubleSided": False,
    }


def add_texcoords(builder: GlbBuilder, uvs: ArrayLike) -> int:
    """``TEXCOORD_0`` accessor (float32) for (n, 2) texture coordinates."""
    array = np.asarray(uvs, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or not np.isfinite(array).all():
        raise TilesError(f"texture coordinates must be finite (n, 2), got {array.shape}")
    return builder.add_accessor(array.astype(np.float32), target=ARRAY_BUFFER)
