"""The residual network: from the lossy reconstruction x~ (and Q) to a discrete logistic
mixture per subpixel, with R -> G -> B coupling of the means (as in L3C / RC).

Cheap on a CPU by construction: a 2x2 pixel-unshuffled branch at half resolution and a trunk
at quarter resolution; every pixel of a 2x2 block gets its own parameters through a final
pixel shuffle.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import ResidualModelConfig

#: Largest QP the lossy layers use; Q enters the network as q / Q_SCALE.
Q_SCALE = 51.0
#: Bounds on log-scales, in residual units (1 = one grey level).
LOG_SCALE_MIN = -4.0
LOG_SCALE_MAX = 6.0


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


@dataclass
class MixtureParams:
    """Per-subpixel mixture parameters, each (N, 3, K, H, W) except ``coupling`` (N, 3, H, W).

    ``coupling`` holds (alpha, beta, gamma): mean_G += alpha*r_R, mean_B += beta*r_R + gamma*r_G.
    """

    logits: torch.Tensor
    means: torch.Tensor
    log_scales: torch.Tensor
    coupling: torch.Tensor

    def crop(self, height: int, width: int) -> "MixtureParams":
        return MixtureParams(
            self.logits[..., :height, :width],
            self.means[..., :height, :width],
            self.log_scales[..., :height, :width],
            self.coupling[..., :height, :width],
        )

    def channel(self, c: int, residual: torch.Tensor | None):
        """(logits, means, log_scales) of channel ``c``, each (N, K, H, W), with the means
        shifted by the already known residuals of the earlier channels (N, 3, H, W)."""
        means = self.means[:, c]
        if c == 1:
            means = means + (self.coupling[:, 0] * residual[:, 0]).unsqueeze(1)
        elif c == 2:
            shift = self.coupling[:, 1] * residual[:, 0] + self.coupling[:, 2] * residual[:, 1]
            means = means + shift.unsqueeze(1)
        return self.logits[:, c], means, self.log_scales[:, c]


class ResidualModel(nn.Module):
    """x~ (N, 3, H, W) in [0, 255] and q (N,) -> MixtureParams at full resolution.

    H and W must be multiples of 4; :func:`predict` pads and crops for any size.
    """

    def __init__(self, config: ResidualModelConfig) -> None:
        super().__init__()
        self.config = config
        ch, cq, k = config.half_channels, config.quarter_channels, config.mixtures
        self.params_per_pixel = 9 * k + 3
        self.stem = nn.Conv2d(4 * 3 + 1, ch, 3, padding=1)
        self.down = nn.Conv2d(4 * ch, cq, 1)
        self.trunk = nn.Sequential(*[ResBlock(cq) for _ in range(config.quarter_blocks)])
        self.up = nn.Conv2d(cq, 4 * ch, 1)
        self.half_blocks = nn.Sequential(*[ResBlock(ch) for _ in range(config.half_blocks)])
        self.head = nn.Conv2d(ch, 4 * self.params_per_pixel, 1)

    def forward(self, recon: torch.Tensor, q: torch.Tensor) -> MixtureParams:
        n, _, h, w = recon.shape
        x = F.pixel_unshuffle(recon / 127.5 - 1.0, 2)
        qmap = (q.to(x.dtype) / Q_SCALE).view(n, 1, 1, 1).expand(n, 1, h // 2, w // 2)
        half = F.leaky_relu(self.stem(torch.cat([x, qmap], 1)), 0.2)
        quarter = self.trunk(self.down(F.pixel_unshuffle(half, 2)))
        half = self.half_blocks(half + F.pixel_shuffle(self.up(quarter), 2))
        out = F.pixel_shuffle(self.head(F.leaky_relu(half, 0.2)), 2)
        return self._split(out)

    def _split(self, out: torch.Tensor) -> MixtureParams:
        n, _, h, w = out.shape
        k = self.config.mixtures
        mix = out[:, : 9 * k].reshape(n, 3, 3, k, h, w)
        return MixtureParams(
            logits=mix[:, :, 0],
            means=mix[:, :, 1],
            log_scales=mix[:, :, 2].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX),
            coupling=torch.tanh(out[:, 9 * k :]),
        )


def predict(model: ResidualModel, recon: torch.Tensor, q: int) -> MixtureParams:
    """Run ``model`` on one (1, 3, H, W) reconstruction of any size (edge-padded to a multiple
    of 4, then cropped back)."""
    _, _, h, w = recon.shape
    ph, pw = -(-h // 4) * 4, -(-w // 4) * 4
    if (ph, pw) != (h, w):
        recon = F.pad(recon, (0, pw - w, 0, ph - h), mode="replicate")
    params = model(recon, torch.tensor([q], dtype=recon.dtype))
    return params.crop(h, w)
