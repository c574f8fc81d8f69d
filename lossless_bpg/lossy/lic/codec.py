"""The learned lossy layer behind the :class:`~lossless_bpg.lossy.base.LossyCodec` interface.

Payload (all integers little-endian varints unless said)::

    lic id (8 bytes) | height | width | q (1 byte) | hyper-latent range (1 byte) | latent range
    (1 byte) | hyper-latent stream length | hyper-latent stream | latent stream (the rest)

The image is padded by edge replication to a multiple of 64 and cropped back. Hyper-latents
(C, H/64, W/64) and latents (M, H/16, W/16) are coded in channel-major order with torchac,
each value as ``value + range``, where a range is the largest magnitude the image has (at most
the model's bound; a smaller alphabet makes the CDFs cheaper to build).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import BackendUnavailableError
from ...residual import coder
from ...varint import read_varint, write_varint
from ..base import LossyCodec
from . import weights
from .model import STRIDE
from .weights import DEFAULT_LIC, LIC_ID_BYTES, LicRegistry, LoadedLic, load_lic


def _padded(n: int) -> int:
    return -(-n // STRIDE) * STRIDE


class LicCodec(LossyCodec):
    """A learned transform codec with a hyperprior, decoded with integer arithmetic."""

    name = "lic"
    backend_id = 3
    q_min = 12
    q_max = 40

    def __init__(self, model: str = DEFAULT_LIC, directory: Path | None = None) -> None:
        self.registry = LicRegistry(directory or weights.LIC_WEIGHTS_DIR)
        self.model_name = model
        # The reconstruction and decoder features of the last payload encoded or decoded: the
        # Q search decodes every payload it has just encoded (the latents it would decode are
        # the ones encode just had), and the residual layer asks for the features after the pixels.
        self._last: tuple[bytes, np.ndarray, torch.Tensor] | None = None
        # The q range is the encoding model's, known before anything is loaded (the Q search
        # reads it first). Decoding names its model by id: a missing default model only
        # matters to encode, which reports it.
        try:
            config = self.registry.card(model).config
            self.q_min, self.q_max = config.q_min, config.q_max
            self.side_channels = config.channels
        except BackendUnavailableError:
            pass

    def _default(self) -> LoadedLic:
        return load_lic(self.registry.card(self.model_name))

    def version(self) -> str:
        card = self.registry.card(self.model_name)
        return f"lic {card.name} ({card.lic_id})"

    def paired_residual_model(self) -> str | None:
        return self.registry.card(self.model_name).residual_model

    def encode(self, img: np.ndarray, q: int) -> bytes:
        lic = self._default()
        self.check_q(q)
        cfg = lic.model.config
        h, w, _ = img.shape
        padded = np.pad(img, ((0, _padded(h) - h), (0, _padded(w) - w), (0, 0)), mode="edge")
        x = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).float()
        with torch.no_grad():
            scaled, hyper = lic.model.analyse(x, torch.tensor([q]))
        hyper_int = hyper.round().clamp(-cfg.hyper_bound, cfg.hyper_bound).long()
        latents = scaled.round().clamp(-cfg.latent_bound, cfg.latent_bound).long()
        _, zc, zh, zw = hyper_int.shape
        hyper_range, latent_range = max(1, int(hyper_int.abs().max())), max(1, int(latents.abs().max()))
        hyper_stream = coder.encode(lic.exact.hyper_cdf((zc, zh, zw), hyper_range),
                                    (hyper_int + hyper_range).reshape(-1))
        latent_stream = coder.encode(lic.exact.latent_cdf(hyper_int, latent_range),
                                     (latents + latent_range).reshape(-1))
        payload = (lic.lic_id + write_varint(h) + write_varint(w) + bytes([q, hyper_range, latent_range])
                   + write_varint(len(hyper_stream)) + hyper_stream + latent_stream)
        recon, side = lic.exact.reconstruct(latents, q)
        self._last = (payload, self._pixels(recon, h, w), side)
        return payload

    @staticmethod
    def _pixels(recon: torch.Tensor, height: int, width: int) -> np.ndarray:
        return np.ascontiguousarray(recon[0, :, :height, :width].permute(1, 2, 0).numpy())

    def side_features(self, data: bytes) -> torch.Tensor:
        return self._decoded(data, None)[1]

    def decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        return self._decoded(data, size)[0].copy()

    def _decoded(self, data: bytes, size: tuple[int, int] | None) -> tuple[np.ndarray, torch.Tensor]:
        """The pixels and decoder features of ``data`` (from the cache when it was the last
        payload seen; tile workers may share this codec, so the cache is read once)."""
        last = self._last
        if last is not None and last[0] == data:
            if size is not None and last[1].shape[:2] != size:
                raise ValueError(f"lic payload is {last[1].shape[1]}x{last[1].shape[0]}, expected {size[1]}x{size[0]}")
            return last[1], last[2]
        if len(data) < LIC_ID_BYTES:
            raise ValueError("lic payload too short")
        lic = load_lic(self.registry.by_id(data[:LIC_ID_BYTES]))
        cfg = lic.model.config
        h, pos = read_varint(data, LIC_ID_BYTES)
        w, pos = read_varint(data, pos)
        if size is not None and (h, w) != size:
            raise ValueError(f"lic payload is {w}x{h}, expected {size[1]}x{size[0]}")
        if not h or not w:
            raise ValueError("lic payload declares an empty image")
        if pos + 3 > len(data):
            raise ValueError("lic payload ends before its quality")
        q, hyper_range, latent_range = data[pos : pos + 3]
        if not cfg.q_min <= q <= cfg.q_max:
            raise ValueError(f"lic payload quality {q} outside [{cfg.q_min}, {cfg.q_max}]")
        if not (1 <= hyper_range <= cfg.hyper_bound and 1 <= latent_range <= cfg.latent_bound):
            raise ValueError(f"lic payload value ranges {hyper_range}, {latent_range} outside the model's "
                             f"{cfg.hyper_bound}, {cfg.latent_bound}")
        hyper_len, pos = read_varint(data, pos + 3)
        if pos + hyper_len > len(data):
            raise ValueError("lic payload truncated")
        hyper_shape = (cfg.hyper_channels, _padded(h) // STRIDE, _padded(w) // STRIDE)
        hyper = coder.decode(lic.exact.hyper_cdf(hyper_shape, hyper_range), data[pos : pos + hyper_len]).long()
        hyper = (hyper - hyper_range).reshape(1, *hyper_shape)
        latents = coder.decode(lic.exact.latent_cdf(hyper, latent_range), data[pos + hyper_len :]).long() - latent_range
        latent_shape = (1, cfg.latent_channels, 4 * hyper_shape[1], 4 * hyper_shape[2])
        recon, side = lic.exact.reconstruct(latents.reshape(latent_shape), q)
        pixels = self._pixels(recon, h, w)
        self._last = (bytes(data), pixels, side)
        return pixels, side

    def payload_parts(self, data: bytes) -> dict[str, int]:
        """Bytes of the hyper-latents and latents in a payload (for ``info``)."""
        _, pos = read_varint(data, LIC_ID_BYTES)
        _, pos = read_varint(data, pos)
        hyper_len, start = read_varint(data, pos + 3)
        return {"hyper-latents": hyper_len, "latents": len(data) - start - hyper_len}
