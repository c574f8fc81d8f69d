"""HEVC-intra lossy layer through PyAV's bundled libx265 (encode) and FFmpeg HEVC decoder.

The payload is ``varint(height) varint(width)`` followed by the raw Annex-B HEVC stream (no
ISOBMFF box). The image is padded by edge replication to a size x265 accepts and cropped back.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..varint import read_varint, write_varint
from .base import LossyCodec
from .color import rgb_to_ycbcr, ycbcr_to_rgb

#: x265 refuses frames smaller than this; we pad up to it (and to a multiple of 8).
MIN_SIDE = 64


def _padded_size(n: int) -> int:
    return max(MIN_SIDE, -(-n // 8) * 8)


def _pad(img: np.ndarray) -> np.ndarray:
    h, w, _ = img.shape
    return np.pad(img, ((0, _padded_size(h) - h), (0, _padded_size(w) - w), (0, 0)), mode="edge")


class HevcCodec(LossyCodec):
    """HEVC intra, 4:4:4 8-bit, constant QP ``q`` (the meaning of bpgenc's ``-q``)."""

    name = "hevc"
    backend_id = 1
    q_min = 0
    q_max = 51

    def __init__(self, preset: str = "slow", tune: str = "ssim", x265_params: str = "") -> None:
        """``x265_params``: more x265 options (``key=value:...``) after the fixed ones; the
        defaults were the smallest files of the settings measured (benchmarks/x265_settings.md)."""
        import av  # imported lazily: the package must load where PyAV is missing

        self._av = av
        self.preset = preset
        self.tune = tune
        self.x265_params = x265_params

    def version(self) -> str:
        return f"pyav {self._av.__version__}, libavcodec {self._av.library_versions['libavcodec']}"

    def encode(self, img: np.ndarray, q: int) -> bytes:
        self.check_q(q)
        av = self._av
        h, w, _ = img.shape
        planes = rgb_to_ycbcr(_pad(img))
        ph, pw = planes.shape[1:]
        ctx = av.CodecContext.create("libx265", "w")
        ctx.width, ctx.height, ctx.pix_fmt = pw, ph, "yuv444p"
        ctx.time_base = Fraction(1, 25)
        ctx.options = {
            "preset": self.preset,
            "tune": self.tune,
            # info=0 drops a 2 kB SEI x265 otherwise writes into every stream.
            "x265-params": f"qp={q}:keyint=1:info=0:log-level=error" + (f":{self.x265_params}" if self.x265_params else ""),
        }
        frame = av.VideoFrame(pw, ph, "yuv444p")
        for plane, data in zip(frame.planes, planes):
            stride = plane.line_size
            buf = np.zeros((ph, stride), np.uint8)
            buf[:, :pw] = data
            plane.update(buf.tobytes())
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
        stream = b"".join(bytes(p) for p in packets)
        return write_varint(h) + write_varint(w) + stream

    def decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        av = self._av
        h, pos = read_varint(data, 0)
        w, pos = read_varint(data, pos)
        if size is not None and (h, w) != size:
            raise ValueError(f"the HEVC layer stores a {w}x{h} picture, expected {size[1]}x{size[0]}")
        ctx = av.CodecContext.create("hevc", "r")
        ctx.thread_count = 1
        # The stream's own parameter sets name its picture size: allow no more than the stored
        # one (FFmpeg counts the width rounded up to 64 pixels; measured).
        ctx.options = {"max_pixels": str(-(-_padded_size(h) // 64) * 64 * -(-_padded_size(w) // 64) * 64)}
        try:
            frames = list(ctx.decode(av.Packet(data[pos:]))) + list(ctx.decode(None))
        except av.error.FFmpegError as exc:
            raise ValueError(f"HEVC stream does not decode: {exc}") from exc
        if len(frames) != 1 or frames[0].format.name != "yuv444p":
            raise ValueError("HEVC stream does not hold exactly one yuv444p picture")
        frame = frames[0]
        ph, pw = frame.height, frame.width
        if ph < h or pw < w:
            raise ValueError("HEVC picture is smaller than the size stored with it")
        planes = np.stack(
            [
                np.frombuffer(bytes(p), np.uint8).reshape(ph, p.line_size)[:, :pw]
                for p in frame.planes
            ]
        )
        return ycbcr_to_rgb(planes)[:h, :w]
