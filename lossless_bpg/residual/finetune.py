"""Per-image fine-tuning of the residual model (forward adaptation of the network itself).

The network is trained on other photographs; a given image has structure of its own that the
last layer of the pass heads can learn in seconds (JPEG-origin images: the 8x8 block grid;
scans: their grain and colour). The encoder fits one change of the heads' last layer, shared
by all coding passes, on the image's own residuals, and sends it quantised:

    W'_s = W_s + dW * 2**-unit_exp,  b'_s = b_s + db * 2**-unit_exp   (every pass s)

with integer ``dW`` (params x head channels) and ``db``. Both sides add the change to the
float weights in float64 (one correctly rounded IEEE addition per weight, the same on every
machine) and build the pass heads' integer layers from the result with the same
deterministic procedure as the shipped model (:class:`.exact.IntConv`), so the CDFs stay
bit-exact.

The change is coded as a histogram of its integers, then the integers (row by row, each row's
weights then its bias) arithmetic-coded with that histogram (docs/format.md, "Model update").
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import FormatError
from ..threads import torch_threads
from ..varint import read_varint, write_varint
from . import coder
from .exact import ACT_FRACTION_BITS, OUTPUT_FRACTION_BITS, ExactResidualModel
from .layer import _chw
from .mixture import bits, log_prob
from .model import LOG_SCALE_MAX, LOG_SCALE_MIN, ResidualModel, pad_to_multiple, pass_extent, pass_lattice, split_params

#: The one scheme so far: a shared change of every pass head's last layer.
SCHEME_SHARED_LAST_LAYER = 1
#: The change's integers are limited to this magnitude (one byte in the file).
MAX_VALUE = 127
MAX_UNIT_EXP = 16
#: Grids tried for the change (its unit is 2**-unit_exp).
UNIT_EXPS = (5, 6, 7, 8)
#: The fit looks at no more than this many pixel positions of each pass (a regular stride).
FIT_POSITIONS = 1 << 13
#: Each Adam step sees one of this many interleaved shards of that sample, in turn: the step
#: costs 1/FIT_SHARDS as much, and on 768x512 photographs (not Kodak) 40 such steps at the
#: larger rate found a larger saving than 30 steps on the whole sample at 3e-3, in a third of
#: the time (benchmarks/finetune/results.md).
FIT_SHARDS = 8
LEARNING_RATE = 1e-2
#: The grids are judged on one of this many interleaved shards of the sample: five judgements
#: on all of it took 0.9 s of the 2.3 s fit of a Kodak image, on the encoder's critical path.
JUDGE_SHARDS = 2
#: The fit's stand-in for the change's own size: bits per unit of |change| on the grid of
#: 2**-RATE_UNIT_EXP (an L1 penalty: it sets small entries to zero, which code cheaply).
RATE_WEIGHT = 1.0
RATE_UNIT_EXP = 6


class UpdateFormatError(FormatError):
    """A model update that does not parse."""


@dataclass(frozen=True)
class HeadUpdate:
    """The change of the pass heads' last layer: ``weight`` (params, channels) and ``bias``
    (params,) integers in units of 2**-``unit_exp``."""

    unit_exp: int
    weight: np.ndarray
    bias: np.ndarray

    def pack(self) -> bytes:
        values = np.concatenate([self.weight, self.bias[:, None]], 1).astype(np.int64)
        half = int(np.abs(values).max(initial=0))
        if half > MAX_VALUE:
            raise ValueError("model update values out of range")
        counts = np.bincount((values + half).reshape(-1), minlength=2 * half + 1)
        out = bytearray([SCHEME_SHARED_LAST_LAYER, self.unit_exp, values.shape[0], values.shape[1], half])
        for c in counts.tolist():
            out += write_varint(c)
        symbols = torch.from_numpy((values + half).reshape(-1))
        return bytes(out) + coder.encode(_cdf(counts, len(symbols)), symbols)

    @staticmethod
    def unpack(data: bytes, params: int, channels: int) -> HeadUpdate:
        """Parse a change for a head of ``params`` outputs over ``channels`` inputs."""
        if len(data) < 5 or data[0] != SCHEME_SHARED_LAST_LAYER:
            raise UpdateFormatError("unknown model update scheme")
        unit_exp, n_rows, n_cols, half = data[1], data[2], data[3], data[4]
        if (n_rows, n_cols) != (params, channels + 1):
            raise UpdateFormatError(f"model update is {n_rows}x{n_cols}, the model's head needs {params}x{channels + 1}")
        if unit_exp > MAX_UNIT_EXP or half > MAX_VALUE:
            raise UpdateFormatError("model update has an impossible unit or value range")
        pos, counts = 5, []
        try:
            for _ in range(2 * half + 1):
                c, pos = read_varint(data, pos)
                counts.append(c)
        except ValueError as exc:
            raise UpdateFormatError(f"model update is truncated ({exc})") from exc
        n = n_rows * n_cols
        if sum(counts) != n:
            raise UpdateFormatError(f"model update counts {sum(counts)} values, the head has {n}")
        cdf = _cdf(np.array(counts), n)
        symbols = coder.decode(cdf, data[pos:]).long()
        # the coder reads past a truncated end and ignores extra bytes: only the exact bytes
        # that these values code to are a valid update
        if coder.encode(cdf, symbols) != data[pos:]:
            raise UpdateFormatError("model update is truncated or damaged")
        values = symbols.numpy().astype(np.int64) - half
        rows = values.reshape(n_rows, n_cols)
        return HeadUpdate(unit_exp, rows[:, :-1], rows[:, -1])


def _cdf(counts: np.ndarray, n: int) -> torch.Tensor:
    """The coder's CDF (one row per value) of the values' histogram ``counts``: integer
    frequencies, every one at least 1, summing to less than 2**16."""
    levels = len(counts)
    spare = coder.CDF_TOTAL - 2 * levels
    freq = 1 + (counts.astype(np.int64) * spare) // max(int(counts.sum()), 1)
    cdf = np.concatenate([[0], np.cumsum(freq)])
    row = coder.as_uint16_in_int16(torch.from_numpy(cdf))
    return row.expand(n, levels + 1).contiguous()


def read_update(model: ResidualModel, data: bytes) -> HeadUpdate:
    """Parse the change ``data`` made for ``model``'s heads (FormatError if it is not one)."""
    if model.steps == 1:
        raise UpdateFormatError("the file carries a model update, but its model has no pass heads")
    last = model.head_convs()[0][2]
    return HeadUpdate.unpack(data, last.out_channels, last.in_channels)


def apply_update(model: ResidualModel, exact: ExactResidualModel, update: HeadUpdate) -> ExactResidualModel:
    """The exact model with ``update`` added to every pass head's last layer."""
    if model.steps == 1:
        raise ValueError("this model has no pass heads to update")
    unit = math.ldexp(1.0, -update.unit_exp)
    delta_w = torch.from_numpy(update.weight.astype(np.float64) * unit)
    delta_b = torch.from_numpy(update.bias.astype(np.float64) * unit)
    lasts = []
    for _, _, last in model.head_convs():
        if tuple(last.weight.shape[:2]) != tuple(delta_w.shape):
            raise ValueError("model update does not fit the model's heads")
        changed = copy.deepcopy(last).double()
        with torch.no_grad():
            changed.weight += delta_w.view_as(changed.weight)
            assert changed.bias is not None
            changed.bias += delta_b
        lasts.append(changed)
    return exact.with_last_head_layers(lasts)


@dataclass
class _PassData:
    """What the fit needs at its sample of positions, as float32 rows: of every pass at once (the
    change is shared by all passes, so the fit treats them as one sample: a few large
    operations instead of many small ones)."""

    hidden: torch.Tensor  # (n, channels), real units
    base: torch.Tensor  # (n, params), the head's output in real units
    target: torch.Tensor  # (n, 3)
    refine: torch.Tensor | None  # generation 2: (n, 2, 3K) channel-net corrections of G, B

    def shard(self, index: int, count: int) -> _PassData:
        """Every ``count``-th row from ``index``: one of ``count`` interleaved shards."""
        rows = slice(index, None, count)
        return _PassData(self.hidden[rows], self.base[rows], self.target[rows],
                         None if self.refine is None else self.refine[rows])


def _gather(exact: ExactResidualModel, image: np.ndarray, recon: np.ndarray, q: int,
            side: torch.Tensor | None, hidden_of: dict[int, torch.Tensor] | None = None) -> _PassData | None:
    """Run the integer model over every pass, teacher-forced with the true residuals, and keep
    what the fit needs at a regular sample of each pass's positions (None: no pass has any),
    and in ``hidden_of`` (if given) every pass's hidden activations, cropped to the pass."""
    height, width = recon.shape[:2]
    residual = image.astype(np.int16) - recon.astype(np.int16)
    recon_t = pad_to_multiple(_chw(recon))
    canvas = torch.zeros_like(recon_t)
    canvas[..., :height, :width] = _chw(residual)
    features = exact.features(recon_t, q, side)
    passes = []
    for step in range(exact.steps):
        h, w = pass_extent(step, exact.steps, height, width)
        if not h or not w:
            continue
        hidden, head_out = exact.head_hidden_and_output(features, step, canvas)
        if hidden_of is not None:
            hidden_of[step] = hidden[..., :h, :w]
        target = pass_lattice(canvas, step, exact.steps)
        pick = torch.arange(0, h * w, max(1, -(-h * w // FIT_POSITIONS)))
        refine = None
        if exact.config.channel_net_channels:
            corr = [exact.refine_channel(c, hidden, target).float() * 2.0**-OUTPUT_FRACTION_BITS for c in (1, 2)]
            refine = torch.stack([_rows(x, h, w, pick) for x in corr], 1)
        passes.append(_PassData(_rows(hidden.float(), h, w, pick) * 2.0**-ACT_FRACTION_BITS,
                                _rows(head_out.float(), h, w, pick) * 2.0**-OUTPUT_FRACTION_BITS,
                                _rows(target.float(), h, w, pick), refine))
    if not passes:
        return None
    refine_rows = [p.refine for p in passes if p.refine is not None]
    return _PassData(torch.cat([p.hidden for p in passes]), torch.cat([p.base for p in passes]),
                     torch.cat([p.target for p in passes]), torch.cat(refine_rows) if refine_rows else None)


def _rows(t: torch.Tensor, h: int, w: int, pick: torch.Tensor) -> torch.Tensor:
    """(1, C, H', W') -> the (n, C) rows at positions ``pick`` of its top-left h x w."""
    return t[0, :, :h, :w].reshape(t.shape[1], -1)[:, pick].T.contiguous()


def _bits(data: _PassData, mixtures: int, delta_w: torch.Tensor, delta_b: torch.Tensor) -> torch.Tensor:
    """Bits of ``data``'s targets with the heads' last layer changed by ``delta_w``, ``delta_b``."""
    out = data.base + data.hidden @ delta_w.T + delta_b
    params = split_params(out.T[None, :, :, None], mixtures)
    target = data.target.T[None, :, :, None]
    total = delta_w.new_zeros(())
    for c in range(3):
        logits, means, log_scales = params.channel(c, target)
        if c and data.refine is not None:
            k = mixtures
            corr = data.refine[:, c - 1].T[None, :, :, None]
            logits, means = logits + corr[:, :k], means + corr[:, k : 2 * k]
            log_scales = (log_scales + corr[:, 2 * k :]).clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
        total = total + bits(log_prob(logits, means, log_scales, target[:, c]))
    return total


def fit_update(
    exact: ExactResidualModel, image: np.ndarray, recon: np.ndarray, q: int, steps: int,
    side: torch.Tensor | None = None, hidden: dict[int, torch.Tensor] | None = None,
) -> tuple[HeadUpdate, float] | None:
    """Fit the change of the heads' last layer to this image (``steps`` Adam steps on a sample
    of every pass), quantised on the grid that minimises the sample's bits plus the change's
    own bytes. Returns the change and its estimated saving in bits over the whole image (side
    information counted), or None when no grid saves anything. Fills ``hidden`` (if given)
    with every pass's last hidden activations, by pass (see :func:`.layer.memo_from_hidden`)."""
    with torch.no_grad():  # not inference mode: the fit's autograd reads these tensors
        data = _gather(exact, image, recon, q, side, hidden)
    if data is None:
        return None
    # The fit's float sums depend on how torch splits them over threads; on one thread the
    # encoder writes the same update (and file) whatever the thread setting or tile workers.
    # (Measured: the same fit as two halves on two threads took no less time on two cores.)
    with torch_threads(1):
        return _fit(data, exact.mixtures, image.shape[0] * image.shape[1], steps)


def _fit(data: _PassData, mixtures: int, whole: int, steps: int) -> tuple[HeadUpdate, float] | None:
    params, channels = data.base.shape[1], data.hidden.shape[1]
    delta_w = torch.zeros(params, channels, requires_grad=True)
    delta_b = torch.zeros(params, requires_grad=True)
    shards = [shard for shard in (data.shard(i, FIT_SHARDS) for i in range(FIT_SHARDS)) if len(shard.target)]
    adam = _Adam([delta_w, delta_b], LEARNING_RATE)
    # the objective is the image's bits: the shard's, scaled up, plus the change's own
    # (roughly RATE_WEIGHT bits per unit of |change| on a grid of 2**-RATE_UNIT_EXP)
    for step in range(steps):
        shard = shards[step % len(shards)]
        rate = (delta_w.abs().sum() + delta_b.abs().sum()) * (RATE_WEIGHT * 2.0**RATE_UNIT_EXP)
        loss = (_bits(shard, mixtures, delta_w, delta_b) * (whole / len(shard.target)) + rate) / whole
        adam.step(torch.autograd.grad(loss, [delta_w, delta_b]))
    judge = data.shard(0, JUDGE_SHARDS)
    with torch.no_grad():
        zero = float(_bits(judge, mixtures, torch.zeros_like(delta_w), torch.zeros_like(delta_b)))
        best: tuple[float, HeadUpdate] | None = None
        for unit_exp in UNIT_EXPS:
            unit = 2.0**unit_exp
            w = (delta_w * unit).round().clamp(-MAX_VALUE, MAX_VALUE)
            b = (delta_b * unit).round().clamp(-MAX_VALUE, MAX_VALUE)
            update = HeadUpdate(unit_exp, w.numpy().astype(np.int64), b.numpy().astype(np.int64))
            saving = (zero - float(_bits(judge, mixtures, w / unit, b / unit))) * whole / len(judge.target) \
                - 8 * len(update.pack())
            if best is None or saving > best[0]:
                best = (saving, update)
    assert best is not None
    return (best[1], best[0]) if best[0] > 0 else None


class _Adam:
    """Adam (betas 0.9, 0.999, eps 1e-8) on plain tensors: ``torch.optim`` would import the
    compiler stack on its first use, about two seconds of a one-image compress."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]
        self.steps = 0

    def step(self, grads: Sequence[torch.Tensor]) -> None:
        self.steps += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for p, g, m, v in zip(self.params, grads, self.first, self.second, strict=True):
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (v / (1 - b2**self.steps)).sqrt_().add_(self.eps)
                p.addcdiv_(m, denom, value=-self.lr / (1 - b1**self.steps))
