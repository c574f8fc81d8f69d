"""What the encoder's effort levels and adaptation modes do (no heavy imports: the CLI builds
its options from these)."""

from dataclasses import dataclass

#: Encoder effort -> the Q search: points scanned (offsets from the model's starting Q), then
#: the pattern-search steps from the best of them. Effort 1 takes the starting Q. Chosen on the
#: validation crops' full Q curves (loss against each crop's best Q / HEVC encodes per image):
#: scan (-8, 0, 8) + step 1: 0.08 % / 6.1; scan (-12, -6, 0, 6, 12) + steps 2, 1: 0.03 % / 8.5;
#: the previous search (steps 2, 1 from the starting Q alone): 0.32 % / 6.3. Effort 2 then
#: gained a step of 2 before the step of 1: on a 960x536 tile of a photograph (not Kodak) the
#: estimated total was 666.9, 667.6, 668.9, 688.5, 688.5, 689.9 kB at Q 16..21; the scan's best,
#: Q 20, had a neighbour 0.01 % dearer (Q 19), so steps of 1 stopped there, 3 % above Q 16.
EFFORT_SEARCH = {1: ((0,), ()), 2: ((-8, 0, 8), (2, 1)), 3: ((-12, -6, 0, 6, 12), (2, 1))}
DEFAULT_EFFORT = 2
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
