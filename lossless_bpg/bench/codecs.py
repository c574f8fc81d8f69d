"""Codecs the benchmark compares, each at a named setting, behind one small interface.

Baselines use maintained libraries (Pillow, imagecodecs) or the reference command-line tools:
libbpg and FLIF as built by ``make third-party`` (found without PATH edits, see
``lossless_bpg.third_party``), others on PATH. A codec that cannot run here says why and is
skipped, never faked.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np

from ..effort import DEFAULT_EFFORT


@dataclass(frozen=True)
class Encoded:
    """What an encoder may return instead of bare bytes: the file and extra columns of its row
    (for this codec: Q and the size split, as the encoder itself counted them)."""

    data: bytes
    details: dict


@dataclass(frozen=True)
class BenchCodec:
    name: str
    settings: str
    encode: Callable[[np.ndarray], bytes | Encoded]
    decode: Callable[[bytes], np.ndarray]
    version: Callable[[], str]
    #: None when the codec can run here, else the reason it cannot.
    unavailable: Callable[[], str | None] = lambda: None


# --- Pillow -----------------------------------------------------------------------------------

def _pil_encode(fmt: str, **kw) -> Callable[[np.ndarray], bytes]:
    def enc(img: np.ndarray) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, format=fmt, **kw)
        return buf.getvalue()

    return enc


def _pil_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _pil_version(feature: str) -> Callable[[], str]:
    def version() -> str:
        import PIL
        from PIL import features

        return f"Pillow {PIL.__version__}, {feature} {features.version(feature)}"

    return version


# --- imagecodecs ------------------------------------------------------------------------------

def _ic(name: str):
    import imagecodecs

    return getattr(imagecodecs, name)


def _ic_version(lib: str) -> Callable[[], str]:
    def version() -> str:
        import imagecodecs

        v = imagecodecs.version(dict)
        return f"imagecodecs {imagecodecs.__version__}, {lib} {v.get(lib, '?')}"

    return version


def _ic_unavailable(codec: str) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            import imagecodecs
        except ImportError:
            return "imagecodecs is not installed"
        return None if getattr(imagecodecs, codec.upper()).available else f"imagecodecs lacks {codec}"

    return check


def _forward_rct(img: np.ndarray) -> np.ndarray:
    """Subtract green, modulo 256 (reversible, 8-bit): (R-G+128, G, B-G+128). Plain RGB
    JPEG-LS ignores inter-channel correlation and looks misleadingly bad."""
    r, g, b = (img[..., i].astype(np.int16) for i in range(3))
    return np.stack([(r - g + 128) & 255, g, (b - g + 128) & 255], -1).astype(np.uint8)


def _inverse_rct(t: np.ndarray) -> np.ndarray:
    a, g, c = (t[..., i].astype(np.int16) for i in range(3))
    return np.stack([(a + g - 128) & 255, g, (c + g - 128) & 255], -1).astype(np.uint8)


# --- command-line tools -----------------------------------------------------------------------

def _tool(name: str) -> str:
    """Full path of a program: libbpg and FLIF as built by third_party/*/build.sh (checkout,
    then the build cache), then PATH; the bare name when it is nowhere (the run then fails)."""
    from ..third_party import find_program

    return find_program(name) or name


def _tool_missing(*tools: str) -> Callable[[], str | None]:
    def check() -> str | None:
        from ..third_party import how_to_build, missing_programs

        missing = missing_programs(*tools)
        return how_to_build(missing) if missing else None

    return check


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        name = Path(cmd[0]).name
        raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-300:]}")


def _via_files(enc_cmd, dec_cmd, out_suffix: str):
    """encode/decode through temp files: ``enc_cmd(src_png, dst)``, ``dec_cmd(src, dst_png)``."""

    def enc(img: np.ndarray) -> bytes:
        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / "in.png", Path(d) / f"out{out_suffix}"
            src.write_bytes(_pil_encode("PNG", compress_level=1)(img))
            _run(enc_cmd(str(src), str(dst)))
            return dst.read_bytes()

    def dec(data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory() as d:
            src, dst = Path(d) / f"in{out_suffix}", Path(d) / "out.png"
            src.write_bytes(data)
            _run(dec_cmd(str(src), str(dst)))
            return _pil_decode(dst.read_bytes())

    return enc, dec


def _tool_version(tool: str, *args: str, find: str = "") -> Callable[[], str]:
    """The first line of ``tool args``'s output that contains ``find``, from there on."""

    def version() -> str:
        proc = subprocess.run([_tool(tool), *args], capture_output=True, check=False)
        for line in (proc.stdout + proc.stderr).decode(errors="replace").splitlines():
            if line.strip() and find in line:
                return line[line.index(find):].strip()
        return tool

    return version


def _optipng_encode(img: np.ndarray) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in.png"
        src.write_bytes(_pil_encode("PNG", optimize=True, compress_level=9)(img))
        _run([_tool("optipng"), "-quiet", "-o7", "-strip", "all", str(src)])
        return src.read_bytes()


def _flif(*effort: str):
    """FLIF 0.4 with its defaults (interlaced, effort 60) or the given effort options."""
    return _via_files(
        lambda s, d: [_tool("flif"), "-e", *effort, "--overwrite", s, d],
        lambda s, d: [_tool("flif"), "-d", "--overwrite", s, d],
        ".flif",
    )


_flif_e100_enc, _flif_e100_dec = _flif("-E100")
_flif_enc, _flif_dec = _flif()
_bpg_enc, _bpg_dec = _via_files(
    lambda s, d: [_tool("bpgenc"), "-lossless", "-f", "444", "-o", d, s],
    lambda s, d: [_tool("bpgdec"), "-o", d, s],
    ".bpg",
)


# --- this codec -------------------------------------------------------------------------------

_MODELS: dict[tuple[str, str | None, int], Any] = {}


def _model(backend: str = "hevc", name: str | None = None, effort: int = DEFAULT_EFFORT):
    """The model ``compress`` codes with for ``name`` (None: its default) at ``effort``, loaded once."""
    if (backend, name, effort) not in _MODELS:
        from ..api import coding_model

        _MODELS[backend, name, effort] = coding_model(name or "default", backend, effort)
    return _MODELS[backend, name, effort]


def _lbpg_encode(backend: str, model: str | None, effort: int) -> Callable[[np.ndarray], Encoded]:
    def enc(img: np.ndarray) -> Encoded:
        from ..codec import compress

        result = compress(img, _model(backend, model, effort), backend=backend, effort=effort)
        return Encoded(result.data, {"q": result.q, "lossy_bytes": result.lossy_bytes,
                                     "residual_bytes": result.residual_bytes,
                                     "header_bytes": result.header_bytes})

    return enc


def _lbpg_decode(backend: str, model: str | None, effort: int) -> Callable[[bytes], np.ndarray]:
    def dec(data: bytes) -> np.ndarray:
        from ..codec import decompress
        from ..sequential import SequentialModel

        coded_with = _model(backend, model, effort)
        # the sequential coder's file names its set (effort 3 may keep an alternative's), as a
        # user's decode finds it; a network is passed on (it may be a .pt file, not shipped)
        return decompress(data, None if isinstance(coded_with, SequentialModel) else coded_with)[0]

    return dec


@cache
def _lbpg_version(backend: str, model: str | None, effort: int) -> str:
    """Release, a hash of the package's code (so that cached rows of a development tree go
    stale when the code changes, not only at a release) and the model ids. Once per process:
    the code a process runs is the code it imported, whatever happens to the files later."""
    from .. import __version__
    from ..lossy import get_lossy_codec

    package = Path(__file__).resolve().parents[1]
    code = hashlib.sha256()
    for path in sorted([*package.rglob("*.py"), *package.rglob("*.c"), *package.rglob("*.yaml")]):
        code.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    lossy = f", {get_lossy_codec(backend).version()}" if backend == "lic" else ""
    return (f"lossless_bpg {__version__} (code {code.hexdigest()[:8]}), "
            f"model {_model(backend, model, effort).model_id_hex}, effort {effort}{lossy}")


def _lbpg_unavailable(backend: str, model: str | None, effort: int) -> Callable[[], str | None]:
    def check() -> str | None:
        try:
            _model(backend, model, effort)
        except Exception as exc:  # noqa: BLE001 (report, do not crash the whole benchmark)
            return f"residual model cannot load: {exc}"
        return None

    return check


def _lbpg(name: str, backend: str, settings: str, model: str | None = None, effort: int = DEFAULT_EFFORT) -> BenchCodec:
    return BenchCodec(name, settings, _lbpg_encode(backend, model, effort), _lbpg_decode(backend, model, effort),
                      partial(_lbpg_version, backend, model, effort), _lbpg_unavailable(backend, model, effort))


def _registry() -> dict[str, BenchCodec]:
    c = [
        _lbpg("lbpg", "hevc", "hevc, sequential coder, Q searched (default settings)"),
        _lbpg("lbpg-e1", "hevc", "hevc, sequential coder, effort 1", effort=1),
        _lbpg("lbpg-e3", "hevc", "hevc, sequential coder, effort 3", effort=3),
        _lbpg("lbpg-parallel", "hevc", "hevc, Q searched, parallel model (the default before 0.6.0)", "parallel"),
        _lbpg("lbpg-fast", "hevc", "hevc, Q searched, model fast", "fast"),
        _lbpg("lbpg-lic", "lic", "lic (learned lossy layer), q searched"),
        BenchCodec("png", "Pillow optimize, level 9", _pil_encode("PNG", optimize=True, compress_level=9),
                   _pil_decode, _pil_version("zlib")),
        BenchCodec("optipng", "optipng -o7", _optipng_encode, _pil_decode,
                   _tool_version("optipng", "-v"), _tool_missing("optipng")),
        BenchCodec("webp", "lossless, method 6, quality 100 (-z 9)",
                   _pil_encode("WEBP", lossless=True, quality=100, method=6), _pil_decode, _pil_version("webp")),
        BenchCodec("webp-default", "lossless, method 4, quality 75",
                   _pil_encode("WEBP", lossless=True, quality=75, method=4), _pil_decode, _pil_version("webp")),
        BenchCodec("jpeg2000", "reversible 5/3 + RCT",
                   lambda im: _ic("jpeg2k_encode")(im, level=0, reversible=True, mct=True, codecformat="j2k"),
                   lambda b: _ic("jpeg2k_decode")(b), _ic_version("openjpeg"), _ic_unavailable("jpeg2k")),
        BenchCodec("jpegxl-e7", "lossless, effort 7 (default)",
                   lambda im: _ic("jpegxl_encode")(im, lossless=True, effort=7),
                   lambda b: _ic("jpegxl_decode")(b), _ic_version("libjxl"), _ic_unavailable("jpegxl")),
        BenchCodec("jpegxl-e9", "lossless, effort 9",
                   lambda im: _ic("jpegxl_encode")(im, lossless=True, effort=9),
                   lambda b: _ic("jpegxl_decode")(b), _ic_version("libjxl"), _ic_unavailable("jpegxl")),
        BenchCodec("jpegxl-e10", "lossless, effort 10 (the highest without expert options)",
                   lambda im: _ic("jpegxl_encode")(im, lossless=True, effort=10),
                   lambda b: _ic("jpegxl_decode")(b), _ic_version("libjxl"), _ic_unavailable("jpegxl")),
        BenchCodec("jpegls", "CharLS, subtract-green colour transform",
                   lambda im: _ic("jpegls_encode")(_forward_rct(im), level=0),
                   lambda b: _inverse_rct(_ic("jpegls_decode")(b)), _ic_version("charls"),
                   _ic_unavailable("jpegls")),
        BenchCodec("flif-e100", "flif -e -E100 (interlaced)", _flif_e100_enc, _flif_e100_dec,
                   _tool_version("flif", "-V", find="FLIF ("), _tool_missing("flif")),
        BenchCodec("flif", "flif -e (default: effort 60, interlaced)", _flif_enc, _flif_dec,
                   _tool_version("flif", "-V", find="FLIF ("), _tool_missing("flif")),
        BenchCodec("bpg-lossless", "bpgenc -lossless -f 444", _bpg_enc, _bpg_dec,
                   _tool_version("bpgenc", "-h"), _tool_missing("bpgenc", "bpgdec")),
    ]
    return {codec.name: codec for codec in c}


CODECS = _registry()
DEFAULT_CODECS = ("lbpg", "lbpg-e1", "png", "webp", "webp-default", "jpeg2000", "jpegxl-e7", "jpegxl-e9", "jpegxl-e10",
                  "jpegls",
                  "flif-e100", "flif", "bpg-lossless", "optipng")
