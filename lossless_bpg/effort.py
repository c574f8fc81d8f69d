"""What the encoder's effort levels and adaptation modes do (no heavy imports: the CLI builds
its options from these)."""

from dataclasses import dataclass
from typing import NamedTuple


class QSearch(NamedTuple):
    """A Q search (see search.scan_and_refine): the points scanned (offsets from the model's
    starting Q), whether parabola vertices are tried next, then the pattern-search steps."""

    scan: tuple[int, ...]
    steps: tuple[int, ...]
    parabola: bool = False


#: Encoder effort -> the Q search. Effort 1 takes the starting Q. Chosen on the validation
#: crops' full Q curves (58 crops, every Q of the search range; loss against each crop's best
#: Q / HEVC encodes per image; scripts/experiments/q_curves.py and q_search_strategies.py):
#: scan (-8, 0, 8) + steps 2, 1 (effort 2 until 0.4.2): 0.042 % / 7.52; the same scan, then
#: parabola vertices, then step 1 (effort 2 since): 0.052 % / 6.62, about one HEVC encode and
#: one sweep of the residual model less (~1 s per Kodak image); vertices alone: 0.11 % / 5.21;
#: scan (-12, -6, 0, 6, 12) + steps 2, 1 (effort 3): 0.035 % / 9.02. Where the scan's end wins,
#: the search walks out by half its spacing at a time before taking vertices (a clean
#: photograph with its best Q at 12: 6 Qs tried, not the 11 of extrapolated vertices).
#: The step of 2 at effort 3: on a 960x536 tile of a photograph (not Kodak) the estimated
#: total was 666.9, 667.6, 668.9, 688.5, 688.5, 689.9 kB at Q 16..21; the scan's best, Q 20,
#: had a neighbour 0.01 % dearer (Q 19), so steps of 1 stopped there, 3 % above Q 16.
EFFORT_SEARCH = {
    1: QSearch((0,), ()),
    2: QSearch((-8, 0, 8), (1,), parabola=True),
    3: QSearch((-12, -6, 0, 6, 12), (2, 1)),
}
DEFAULT_EFFORT = 2
#: Encoder effort -> the Q search of the sequential residual coder, on its real bits, as
#: offsets from the lossy layer's coarsest Q (where a strong residual model puts the best
#: total: each bit of HEVC buys back well under one bit of residual), then pattern steps.
SEQUENTIAL_SEARCH = {
    1: QSearch((0,), ()),
    2: QSearch((0, -6), (3,)),
    3: QSearch((0, -6, -12, -24), (3, 1)),
}
#: Lowest effort whose Q search estimates with the coding model itself even where its card
#: names a cheaper search model (LoadedModel.search). Below it the cheaper model picks Q: on
#: 16 held-out 768x512 photographs generation 2 coded at the Q `fast`'s search chose gave
#: 5,176,904 bytes against 5,176,651 at the Q of its own search (+0.005 %); on one of them
#: (profiled, one thread) the search took 6.6 s with `fast`'s estimates, 10.4 s with its own.
OWN_SEARCH_EFFORT = 3
#: Encoder effort -> steps of the per-image fine-tuning's fit (residual.finetune), 0: none.
FINETUNE_STEPS = {1: 0, 2: 40, 3: 160}
#: Lowest effort at which ``adapt="auto"`` may turn on the backward error feedback. Deciding
#: whether it pays takes another sweep and two more recalibration fits for the base and again
#: for the fine-tuned model: about 2 s per Kodak image (kodim20 15.8 -> 13.1 s, kodim05 15.3 ->
#: 14.0 s, the same files), for 0.04 % of Kodak's bits (3.1746 -> 3.1734, chosen on 8 of 24).
ERROR_FEEDBACK_EFFORT = 3
#: compress(adapt=...): "auto" fine-tunes the model per image and (from ERROR_FEEDBACK_EFFORT)
#: turns on the backward error feedback where each pays, "none" never does either (the
#: per-stream recalibration stays).
ADAPT_MODES = ("auto", "none")


@dataclass(frozen=True)
class PerImageLearning:
    """What the encoder may learn from each image (or tile) beyond the per-stream
    recalibration: ``finetune_steps`` of the model update's fit (0: none), and whether it may
    turn on the backward error feedback (residual.backward)."""

    finetune_steps: int
    error_feedback: bool

    @classmethod
    def of(cls, adapt: str, effort: int) -> "PerImageLearning":
        if adapt not in ADAPT_MODES:
            raise ValueError(f"adapt must be one of {', '.join(ADAPT_MODES)}")
        auto = adapt == "auto"
        return cls(FINETUNE_STEPS[effort] if auto else 0, auto and effort >= ERROR_FEEDBACK_EFFORT)
