"""lossless_bpg: lossless and near-lossless image compression with an HEVC-intra lossy layer
plus a learned residual coder."""

__version__ = "0.3.1"
