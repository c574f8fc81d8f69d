"""Pillow plugin: ``PIL.Image.open("x.lbpg")`` reads lossless_bpg files, and ``im.save("x.lbpg")``
writes them.

Importing this module registers the format (so does :func:`lossless_bpg.register_pillow`)::

    import lossless_bpg.pillow_plugin  # noqa: F401
    from PIL import Image

    with Image.open("photo.lbpg") as im:   # mode 'RGB' or 'L', size from the header
        im.load()                         # decodes (exact pixels or an error)

Opening parses and checks the container (a damaged, truncated or newer file raises
:class:`~lossless_bpg.errors.FormatError` / ``VersionError`` there); ``load()`` decodes with
:func:`lossless_bpg.api.decompress`, whose errors (``ChecksumError``, ``ModelMismatchError``,
...) it raises unchanged. Saving takes the options of :func:`lossless_bpg.api.compress`:
``im.save("x.lbpg", quality=28)``, ``effort=1``, ``model=...``, ``metadata=...``.

An opened file's ICC profile and EXIF are in ``im.info["icc_profile"]`` and ``im.info["exif"]``
(as Pillow's own plugins give them, so saving the image elsewhere keeps them), and all of its
metadata, as PNG chunks, in ``im.info["lbpg_metadata"]``.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from .container import MAGIC, AnyHeader, qs_of, unpack
from .errors import FormatError
from .metadata import Metadata, icc_profile

FORMAT = "LBPG"
EXTENSION = ".lbpg"
MIME = "image/x-lbpg"


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class LbpgImageFile(ImageFile.ImageFile):
    """An ``.lbpg`` file: one frame, mode 'RGB' or 'L', decoded whole on ``load()``."""

    format = FORMAT
    format_description = "lossless_bpg (HEVC intra + learned residual coder)"
    _lbpg_header: AnyHeader

    def _open(self) -> None:
        assert self.fp is not None
        self.fp.seek(0)
        parsed = unpack(self.fp.read())
        header = self._lbpg_header = parsed.header
        self._mode = "L" if header.greyscale else "RGB"
        self._size = (header.width, header.height)
        qs = qs_of(parsed)
        self.info["lbpg_q"] = max(set(qs), key=qs.count)  # the commonest, for a tiled file
        self.info["lbpg_tile_qs"] = qs
        self.info["lbpg_model_id"] = header.model_id.hex()
        self.info["lbpg_metadata"] = parsed.metadata
        self.info.update(_pillow_info(parsed.metadata))
        self.tile = [ImageFile._Tile("lbpg", (0, 0, *self.size), 0, None)]

    def load_prepare(self) -> None:
        # Before Pillow allocates the image: a header's size is refused as the decoder would
        # refuse it (even where Image.MAX_IMAGE_PIXELS was lifted), not attempted.
        from .memory import check_decode_memory

        check_decode_memory(self._lbpg_header)
        super().load_prepare()


def _pillow_info(metadata: Metadata) -> dict[str, bytes]:
    """The ICC profile and EXIF of ``metadata`` under the keys Pillow's plugins use."""
    info = {}
    for chunk in metadata:
        if chunk.kind == b"iCCP" and (profile := icc_profile(chunk)) is not None:
            info["icc_profile"] = profile
        elif chunk.kind == b"eXIf":
            info["exif"] = b"Exif\0\0" + chunk.data
    return info


class LbpgDecoder(ImageFile.PyDecoder):
    """Reads the whole file from the tile's offset (0) and decodes it exactly."""

    _pulls_fd = True

    def decode(self, buffer: bytes | bytearray | memoryview | Image.SupportsArrayInterface) -> tuple[int, int]:
        from .api import decode

        assert self.fd is not None
        pixels, header = decode(self.fd.read())
        mode = "L" if header.greyscale else "RGB"
        if mode != self.mode or (header.width, header.height) != (self.state.xsize, self.state.ysize):
            raise FormatError("the .lbpg file changed between Image.open() and load()")
        self.set_as_raw(pixels.tobytes(), mode)
        return -1, 0


def _save(im: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from .api import compress

    options = {k: im.encoderinfo[k] for k in ("quality", "effort", "model", "backend", "metadata")
               if k in im.encoderinfo}
    fp.write(compress(im, **options))


def register() -> None:
    """Register the format with Pillow (idempotent)."""
    Image.register_open(FORMAT, LbpgImageFile, _accept)
    Image.register_decoder("lbpg", LbpgDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)


register()
