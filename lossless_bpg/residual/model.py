"""The residual network: from the lossy reconstruction x~ (and Q) to a discrete logistic
mixture per subpixel, with R -> G -> B coupling of the means (as in L3C / RC).

Cheap on a CPU by construction: a 2x2 pixel-unshuffled branch at half resolution and a trunk
at quarter resolution compute features once per image. Then either
- one head gives every pixel its parameters (``context_steps = 1``), or
- one head per pass codes one pixel position of every BxB block (B = 2: 4 passes, B = 4:
  16 passes, coarse to fine); pass s also sees, through a 3x3 convolution at 1/B resolution,
  the residuals of passes < s in its own and the neighbouring blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .config import ResidualModelConfig

#: Largest QP the lossy layers use; Q enters the network as q / Q_SCALE.
Q_SCALE = 51.0
#: Bounds on log-scales, in residual units (1 = one grey level).
LOG_SCALE_MIN = -4.0
LOG_SCALE_MAX = 6.0
#: Pixel offsets (dy, dx) inside each BxB block in coding order, by number of passes.
PASS_OFFSETS = {
    1: ((0, 0),),
    4: ((0, 0), (1, 1), (0, 1), (1, 0)),
    16: (
        (0, 0),
        (2, 2),
        (0, 2), (2, 0),
        (1, 1), (3, 3), (1, 3), (3, 1),
        (0, 1), (0, 3), (2, 1), (2, 3), (1, 0), (3, 0), (1, 2), (3, 2),
    ),
}
BLOCK = {1: 1, 4: 2, 16: 4}


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


#: A channel network: (channel c in 1..2, the pass head's hidden features (N, hc, H, W), the
#: residuals (N, 3, H, W) of which channels < c are read) -> (N, 3K, H, W) corrections of
#: channel c's logits, means and log-scales.
ChannelRefiner = Callable[[int, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class MixtureParams:
    """Per-subpixel mixture parameters, each (N, 3, K, H, W) except ``coupling`` (N, 3, H, W).

    ``coupling`` holds (alpha, beta, gamma): mean_G += alpha*r_R, mean_B += beta*r_R + gamma*r_G.
    Generation 2 models also give ``hidden`` features and a ``refiner`` (see
    :data:`ChannelRefiner`) that :meth:`channel` applies once the earlier channels are known.
    """

    logits: torch.Tensor
    means: torch.Tensor
    log_scales: torch.Tensor
    coupling: torch.Tensor
    hidden: torch.Tensor | None = None
    refiner: ChannelRefiner | None = None

    def crop(self, height: int, width: int) -> MixtureParams:
        return MixtureParams(
            self.logits[..., :height, :width],
            self.means[..., :height, :width],
            self.log_scales[..., :height, :width],
            self.coupling[..., :height, :width],
            None if self.hidden is None else self.hidden[..., :height, :width],
            self.refiner,
        )

    def channel(
        self, c: int, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, means, log_scales) of channel ``c``, each (N, K, H, W), with the means
        shifted by the already known residuals of the earlier channels (N, 3, H, W), which
        channels 1 and 2 need."""
        means = self.means[:, c]
        if c and residual is None:
            raise ValueError(f"channel {c} needs the residuals of the earlier channels")
        if c == 1:
            assert residual is not None
            means = means + (self.coupling[:, 0] * residual[:, 0]).unsqueeze(1)
        elif c == 2:
            assert residual is not None
            shift = self.coupling[:, 1] * residual[:, 0] + self.coupling[:, 2] * residual[:, 1]
            means = means + shift.unsqueeze(1)
        logits, log_scales = self.logits[:, c], self.log_scales[:, c]
        if c and self.refiner is not None and self.hidden is not None:
            assert residual is not None
            k = logits.shape[1]
            delta = self.refiner(c, self.hidden, residual)
            logits = logits + delta[:, :k]
            means = means + delta[:, k : 2 * k]
            log_scales = (log_scales + delta[:, 2 * k :]).clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
        return logits, means, log_scales


def split_params(out: torch.Tensor, mixtures: int) -> MixtureParams:
    """(N, 9K+3, H, W) raw head output -> MixtureParams."""
    n, _, h, w = out.shape
    k = mixtures
    mix = out[:, : 9 * k].reshape(n, 3, 3, k, h, w)
    return MixtureParams(
        logits=mix[:, :, 0],
        means=mix[:, :, 1],
        log_scales=mix[:, :, 2].clamp(LOG_SCALE_MIN, LOG_SCALE_MAX),
        coupling=torch.tanh(out[:, 9 * k :]),
    )


def pass_lattice(residual: torch.Tensor, step: int, steps: int) -> torch.Tensor:
    """The residual subpixels pass ``step`` codes: all of them, or one position of each BxB
    block (a 1/B-resolution view)."""
    if steps == 1:
        return residual
    dy, dx = PASS_OFFSETS[steps][step]
    b = BLOCK[steps]
    return residual[..., dy::b, dx::b]


def pass_extent(step: int, steps: int, height: int, width: int) -> tuple[int, int]:
    """Rows and columns of a ``height`` x ``width`` image that pass ``step`` covers."""
    dy, dx = PASS_OFFSETS[steps][step]
    b = BLOCK[steps]
    return (height - dy + b - 1) // b, (width - dx + b - 1) // b


def _bias(conv: nn.Conv2d) -> torch.Tensor:
    assert conv.bias is not None, "the model's convolutions all have biases"
    return conv.bias


class ResidualModel(nn.Module):
    """x~ (N, 3, H, W) in [0, 255] and q (N,) -> features; features + known residuals ->
    MixtureParams for each coding pass. H and W must be multiples of 4."""

    # Present for some configurations only (see __init__).
    up: nn.Conv2d
    half_blocks: nn.Sequential
    head: nn.Conv2d
    context: nn.ModuleList
    heads: nn.ModuleList
    ctx_feat: nn.Conv2d
    ctx_known: nn.Conv2d
    pass_embedding: nn.Parameter
    ctx_blocks: nn.Sequential
    channel_nets: nn.ModuleList
    side_in: nn.Conv2d

    def __init__(self, config: ResidualModelConfig) -> None:
        super().__init__()
        self.config = config
        ch, cq, k = config.half_channels, config.quarter_channels, config.mixtures
        self.params_per_pixel = 9 * k + 3
        self.stem = nn.Conv2d(4 * 3 + 1, ch, 3, padding=1)
        self.down = nn.Conv2d(4 * ch, cq, 1)
        self.trunk = nn.Sequential(*[ResBlock(cq) for _ in range(config.quarter_blocks)])
        if config.side_channels:
            # Starts at zero: a model grown to read the lossy layer's features computes what it
            # computed without them (function-preserving growth).
            self.side_in = nn.Conv2d(config.side_channels, cq, 1)
            with torch.no_grad():
                self.side_in.weight.zero_()
                _bias(self.side_in).zero_()
        if config.context_steps != 16:  # B = 4 heads read the quarter-resolution trunk directly
            self.up = nn.Conv2d(cq, 4 * ch, 1)
            self.half_blocks = nn.Sequential(*[ResBlock(ch) for _ in range(config.half_blocks)])
        if config.context_steps == 1:
            self.head = nn.Conv2d(ch, 4 * self.params_per_pixel, 1)
        else:
            cc, hc = config.context_channels, config.head_channels
            # Heads work at 1/B resolution: on the half-resolution features (B = 2), or on the
            # trunk's quarter-resolution features plus the 4x4-unshuffled x~ (B = 4).
            fc = ch if config.context_steps == 4 else cq + 16 * 3
            # Pass s sees the residuals of passes 0..s-1: 3 channels each, at 1/B resolution.
            self.context = nn.ModuleList(
                [nn.Conv2d(3 * s, cc, 3, padding=1) for s in range(1, config.context_steps)]
            )
            gc = config.context_net_channels
            self.feature_channels = fc
            self.heads = nn.ModuleList(
                [
                    nn.Sequential(
                        nn.Conv2d(fc + (cc if s else 0) + gc, hc, 1),
                        nn.LeakyReLU(0.2),
                        nn.Conv2d(hc, hc, 1),
                        nn.LeakyReLU(0.2),
                        nn.Conv2d(hc, self.params_per_pixel, 1),
                    )
                    for s in range(config.context_steps)
                ]
            )
            if gc:
                # Generation 2: one context network for every pass over the x~ features and
                # the residuals of all earlier passes (the 16 lattices, zero where not known
                # yet), told which pass it serves by a learned embedding.
                self.ctx_feat = nn.Conv2d(fc, gc, 3, padding=1)
                self.ctx_known = nn.Conv2d(3 * config.context_steps, gc, 3, padding=1)
                self.pass_embedding = nn.Parameter(torch.zeros(config.context_steps, gc))
                self.ctx_blocks = nn.Sequential(*[ResBlock(gc) for _ in range(config.context_net_blocks)])
                with torch.no_grad():  # the heads start by ignoring it (function-preserving growth)
                    for first, _, _ in self.head_convs():
                        first.weight[:, -gc:] = 0.0
            if config.channel_net_channels:
                kc, k = config.channel_net_channels, config.mixtures
                self.channel_nets = nn.ModuleList(
                    [nn.Sequential(nn.Conv2d(hc + c, kc, 1), nn.LeakyReLU(0.2), nn.Conv2d(kc, 3 * k, 1))
                     for c in (1, 2)]
                )
                with torch.no_grad():  # no correction at first
                    for net in self.channel_nets:
                        last = cast(nn.Conv2d, cast(nn.Sequential, net)[2])
                        last.weight.zero_()
                        _bias(last).zero_()

    @property
    def steps(self) -> int:
        return self.config.context_steps

    def context_convs(self) -> list[nn.Conv2d]:
        """The context convolution of passes 1, 2, ..."""
        return [cast(nn.Conv2d, conv) for conv in self.context]

    def head_convs(self) -> list[tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d]]:
        """The first, second and last convolution of every pass's head."""
        return [(cast(nn.Conv2d, h[0]), cast(nn.Conv2d, h[2]), cast(nn.Conv2d, h[4]))
                for h in (cast(nn.Sequential, head) for head in self.heads)]

    @property
    def generation(self) -> int:
        return self.config.generation

    def channel_net_convs(self) -> list[tuple[nn.Conv2d, nn.Conv2d]]:
        """First and last convolution of the G and B channel networks (generation 2)."""
        return [(cast(nn.Conv2d, n[0]), cast(nn.Conv2d, n[2]))
                for n in (cast(nn.Sequential, net) for net in self.channel_nets)]

    def context_blocks(self) -> list[ResBlock]:
        return [cast(ResBlock, b) for b in self.ctx_blocks]

    def features(self, recon: torch.Tensor, q: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        """Features of the reconstruction at the heads' resolution (computed once per image;
        generation 2 appends the context network's x~ term, also the same for every pass).
        ``side``: the lossy layer's decoder features (N, side_channels, >= H/4, >= W/4), for a
        model that reads them."""
        f = self._features(recon, q, side)
        if self.config.context_net_channels:
            return torch.cat([f, self.ctx_feat(f)], 1)
        return f

    def _features(self, recon: torch.Tensor, q: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        n, _, h, w = recon.shape
        normed = recon / 127.5 - 1.0
        x = F.pixel_unshuffle(normed, 2)
        qmap = (q.to(x.dtype) / Q_SCALE).view(n, 1, 1, 1).expand(n, 1, h // 2, w // 2)
        half = F.leaky_relu(self.stem(torch.cat([x, qmap], 1)), 0.2)
        quarter = self.down(F.pixel_unshuffle(half, 2))
        if self.config.side_channels:
            quarter = quarter + self.side_in(side_at(side, self.config.side_channels, h // 4, w // 4))
        quarter = self.trunk(quarter)
        if self.steps == 16:
            return torch.cat([F.leaky_relu(quarter, 0.2), F.pixel_unshuffle(normed, 4)], 1)
        half = self.half_blocks(half + F.pixel_shuffle(self.up(quarter), 2))
        return F.leaky_relu(half, 0.2)

    def pass_params(self, features: torch.Tensor, step: int, residual: torch.Tensor) -> MixtureParams:
        """Mixture for the subpixels of pass ``step``; reads only the residuals of earlier passes
        from ``residual`` (N, 3, H, W), so the decoder may leave later ones at zero."""
        if self.steps == 1:
            return split_params(F.pixel_shuffle(self.head(features), 2), self.config.mixtures)
        if self.generation == 2:
            return self._pass_params_v2(features, step, residual)
        inputs = [features]
        if step:
            known = torch.cat([pass_lattice(residual, s, self.steps) for s in range(step)], 1)
            inputs.append(F.leaky_relu(self.context[step - 1](known / 16.0), 0.2))
        return split_params(self.heads[step](torch.cat(inputs, 1)), self.config.mixtures)

    def known_lattices(self, residual: torch.Tensor, step: int) -> torch.Tensor:
        """The residuals of passes < ``step`` as 3 channels per pass (in coding order) at 1/4
        resolution, zero for the passes not decoded yet: (N, 48, H/4, W/4)."""
        b = BLOCK[self.steps]
        lattices = [pass_lattice(residual, s, self.steps) for s in range(step)]
        zeros = residual.new_zeros(residual.shape[0], 3 * (self.steps - step), residual.shape[-2] // b,
                                   residual.shape[-1] // b)
        return torch.cat([*lattices, zeros], 1)

    def _context_net(self, feat_term: torch.Tensor, known: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(feat_term + self.ctx_known(known / 16.0) + embedding, 0.2)
        return F.leaky_relu(self.ctx_blocks(x), 0.2)

    def _pass_params_v2(
        self, features: torch.Tensor, step: int, residual: torch.Tensor, context: torch.Tensor | None = None
    ) -> MixtureParams:
        fc = self.feature_channels
        f, feat_term = features[:, :fc], features[:, fc:]
        inputs = [f]
        if step:
            known = torch.cat([pass_lattice(residual, s, self.steps) for s in range(step)], 1)
            inputs.append(F.leaky_relu(self.context[step - 1](known / 16.0), 0.2))
        if self.config.context_net_channels:
            if context is None:
                embedding = self.pass_embedding[step].view(1, -1, 1, 1)
                context = self._context_net(feat_term, self.known_lattices(residual, step), embedding)
            inputs.append(context)
        head = cast(nn.Sequential, self.heads[step])
        hidden = head[3](head[2](head[1](head[0](torch.cat(inputs, 1)))))
        params = split_params(head[4](hidden), self.config.mixtures)
        if self.config.channel_net_channels:
            params.hidden, params.refiner = hidden, self.refine_channel
        return params

    def refine_channel(self, c: int, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """Corrections of channel ``c``'s mixtures (see :data:`ChannelRefiner`)."""
        return self.channel_nets[c - 1](torch.cat([hidden, residual[:, :c] / 16.0], 1))

    def forward(self, recon: torch.Tensor, q: torch.Tensor, residual: torch.Tensor,
                side: torch.Tensor | None = None) -> list[MixtureParams]:
        """Parameters of every pass, teacher-forced with the true ``residual`` (training)."""
        features = self.features(recon, q, side)
        if self.generation == 2:
            return self._all_passes_v2(features, residual)
        if self.steps > 1 and features.is_cuda:
            return self._all_passes_at_once(features, residual)
        return [self.pass_params(features, s, residual) for s in range(self.steps)]

    def _all_passes_v2(self, features: torch.Tensor, residual: torch.Tensor) -> list[MixtureParams]:
        """:meth:`pass_params` of every pass, the shared context network run once over all
        passes (stacked along the batch)."""
        if not self.config.context_net_channels:
            return [self._pass_params_v2(features, s, residual) for s in range(self.steps)]
        n, steps = residual.shape[0], self.steps
        lattices = torch.stack([pass_lattice(residual, s, steps) for s in range(steps)], 1)  # N,S,3,h,w
        mask = torch.ones(steps, steps, device=residual.device).tril(-1)  # pass p knows s < p
        known = (mask.view(1, steps, steps, 1, 1, 1) * lattices.unsqueeze(1)).flatten(2, 3).flatten(0, 1)
        feat_term = features[:, self.feature_channels:]
        feat_term = feat_term.unsqueeze(1).expand(n, steps, *feat_term.shape[1:]).flatten(0, 1)
        embedding = self.pass_embedding.repeat(n, 1).view(n * steps, -1, 1, 1)
        context = self._context_net(feat_term, known, embedding).view(n, steps, -1, *known.shape[-2:])
        return [self._pass_params_v2(features, s, residual, context[:, s]) for s in range(steps)]

    def _all_passes_at_once(self, features: torch.Tensor, residual: torch.Tensor) -> list[MixtureParams]:
        """:meth:`pass_params` of every pass, with every layer of all passes run as one
        convolution (the per-pass weights stacked, zero where a pass may not look): a GPU then
        runs a handful of kernels per step instead of a hundred. (On a CPU the per-pass loop is
        faster: it skips the zeros.)"""
        lattices = torch.cat([pass_lattice(residual, s, self.steps) for s in range(self.steps)], 1) / 16.0
        context_w, context_b = self._stacked_context()
        context = F.leaky_relu(F.conv2d(lattices, context_w, context_b, padding=1), 0.2)
        heads = self.head_convs()
        first = [convs[0] for convs in heads]
        nf = features.shape[1]
        hidden = F.conv2d(features, torch.cat([c.weight[:, :nf] for c in first]), torch.cat([_bias(c) for c in first]))
        ctx_w = torch.cat([c.weight[:, nf:] for c in first[1:]])
        from_context = F.conv2d(context, ctx_w, groups=self.steps - 1)
        pass0 = hidden.shape[1] // self.steps  # pass 0 has no context
        hidden = torch.cat([hidden[:, :pass0], hidden[:, pass0:] + from_context], 1)
        hidden = F.leaky_relu(hidden, 0.2)
        for layer in (1, 2):
            convs = [head[layer] for head in heads]
            hidden = F.conv2d(hidden, torch.cat([c.weight for c in convs]), torch.cat([_bias(c) for c in convs]), groups=self.steps)
            if layer == 1:
                hidden = F.leaky_relu(hidden, 0.2)
        return [split_params(out, self.config.mixtures) for out in hidden.chunk(self.steps, 1)]

    def _stacked_context(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The context convolutions of passes 1.. as one convolution over all lattices, each
        pass's weights zero on the lattices of its own and later passes."""
        convs = self.context_convs()
        weights = [F.pad(c.weight, (0, 0, 0, 0, 0, 3 * self.steps - c.in_channels)) for c in convs]
        return torch.cat(weights), torch.cat([_bias(c) for c in convs])


def side_at(side: torch.Tensor | None, channels: int, height: int, width: int) -> torch.Tensor:
    """The lossy layer's features ``side`` cropped to the trunk's ``height`` x ``width`` (the
    lossy layer may have coded a larger, padded image), checked against what the model reads."""
    if side is None:
        raise ValueError(f"this residual model reads {channels} channels of the lossy layer's decoder features, "
                         "and none were given (it pairs with the lossy layer it was trained with)")
    if side.dim() != 4 or side.shape[1] != channels or side.shape[-2] < height or side.shape[-1] < width:
        raise ValueError(f"lossy-layer features of shape {tuple(side.shape)} do not fit a model reading "
                         f"{channels} channels at {height}x{width}")
    return side[..., :height, :width]


def grow_state_dict(model: nn.Module, source: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """``model``'s state with every tensor of ``source`` copied in (a smaller model's: a
    generation 1 model into generation 2). A tensor of the same name and shape is taken whole;
    one that is smaller in some dimensions fills the leading part of the model's tensor, the
    rest set to zero: a head's first convolution grown to read the context network keeps its
    weights for the old inputs and gives the new ones weight zero, so the grown model computes
    what the source computed (function-preserving growth). Returns (state, tensors taken)."""
    own = model.state_dict()
    taken = 0
    for name, value in source.items():
        if name not in own:
            continue
        target = own[name]
        if target.shape == value.shape:
            own[name] = value.to(target.dtype).clone()
        elif target.dim() == value.dim() and all(t >= v for t, v in zip(target.shape, value.shape)):
            grown = torch.zeros_like(target)
            grown[tuple(slice(0, v) for v in value.shape)] = value
            own[name] = grown
        else:
            continue
        taken += 1
    return own, taken


def pad_to_multiple(t: torch.Tensor, multiple: int = 4) -> torch.Tensor:
    """Edge-pad (N, C, H, W) on the bottom/right to multiples of ``multiple``."""
    h, w = t.shape[-2:]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if (ph, pw) == (h, w):
        return t
    return F.pad(t, (0, pw - w, 0, ph - h), mode="replicate")
