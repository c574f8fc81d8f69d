"""The sequential residual coder (the default residual mode since 0.6.0): pixels in raster
order, each predicted from its decoded neighbours and the lossy reconstruction by predictors
and probability estimates that learn online on the image, in compiled integer code
(seqcore.c)."""

from .coder import decode, encode, warm_up
from .model import SequentialModel, by_id, by_name, for_effort, models, require_by_id

__all__ = ["SequentialModel", "by_id", "by_name", "decode", "encode", "for_effort", "models", "require_by_id",
           "warm_up"]
