"""The learned lossy layer (backend ``lic``): a hyperprior transform codec trained for the total
lossless rate, decoded with integer arithmetic (see :mod:`.model`, :mod:`.exact`)."""

from .codec import LicCodec

__all__ = ["LicCodec"]
