"""What ``info`` prints about an .lbpg file: its header and where its bytes go."""

from __future__ import annotations

import collections
import functools

from .container import SEQUENTIAL_VERSION, LbpgFile, TiledFile, qs_of
from .errors import LosslessBpgError
from .lossy import backend_name_from_id, get_lossy_codec
from .metadata import describe_metadata, encode_section


def _payload_parts(backend_id: int, tiles: tuple[LbpgFile, ...]) -> dict[str, int]:
    """The lossy layer's own split of its bytes (lic: latents, hyper-latents), summed over the
    tiles; {} where the backend has none or is not installed."""
    try:
        lossy = get_lossy_codec(backend_name_from_id(backend_id))
        parts: collections.Counter[str] = collections.Counter()
        for t in tiles:
            parts.update(lossy.payload_parts(t.lossy))
        return dict(parts)
    except (LosslessBpgError, ValueError):
        return {}


def _backend(backend_id: int) -> str:
    try:
        return backend_name_from_id(backend_id)
    except LosslessBpgError:
        return f"unknown ({backend_id})"


@functools.lru_cache(maxsize=64)
def _model(model_id: bytes) -> str:
    """The id and, where this installation has it, the model's name (from the cards alone;
    read once per id, not once per file, when ``info`` is given a folder of files)."""
    from .residual.registry import Registry
    from .sequential import by_id

    seq = by_id(model_id)
    if seq is not None:
        return f"{model_id.hex()} ({seq.name}: sequential coder, effort {seq.effort})"
    card = Registry().by_id(model_id)
    return f"{model_id.hex()} ({card.name})" if card else f"{model_id.hex()} (not in this installation)"


def _qs(qs: tuple[int, ...]) -> str:
    if len(qs) == 1:
        return f"Q={qs[0]}"
    counts = collections.Counter(qs)
    return "Q per tile: " + ", ".join(f"{q} ({n} tile{'s' * (n > 1)})" for q, n in sorted(counts.items()))


def describe(f: LbpgFile | TiledFile, file_bytes: int) -> list[str]:
    """The lines ``info`` prints for a parsed file of ``file_bytes`` bytes."""
    h = f.header
    tiles = (f,) if isinstance(f, LbpgFile) else f.tiles
    sub = h.width * h.height * 3
    lossy = sum(len(t.lossy) for t in tiles)
    escapes = sum(len(e) for t in tiles for e in t.escape_streams)
    residual = sum(len(s) for t in tiles for s in t.residual_streams) + escapes
    updates = [len(t.model_update) for t in tiles if t.model_update]
    fed = sum(t.header.error_feedback for t in tiles)
    per_channel = [
        sum(len(x) for t in tiles for x in t.residual_streams[c::3] + t.escape_streams[c::3]) for c in range(3)
    ]
    passes = {len(t.residual_streams) // 3 for t in tiles}
    sent = collections.Counter(len(a) for t in tiles for a in t.adaptations)
    sequential = all(t.header.version == SEQUENTIAL_VERSION for t in tiles)
    metadata = len(encode_section(f.metadata)) if f.metadata else 0
    lines = [
        f"  container version  {h.version}",
        f"  image              {h.width}x{h.height} {'greyscale' if h.greyscale else 'RGB'}",
    ]
    if isinstance(f, TiledFile):
        grid = f.header.tiles
        lines.append(f"  tiles              {len(grid)} (nominal side {f.header.tile_size}; "
                     f"largest {max(t.width for t in grid)}x{max(t.height for t in grid)})")
    lines += [
        f"  lossy backend      {_backend(h.backend_id)}, {_qs(qs_of(f))}",
        f"  residual model     {_model(h.model_id)}",
    ]
    if isinstance(f, LbpgFile) and not sequential:
        lines.append("  residual ranges    " + ", ".join(
            f"{c}:[{lo},{hi}]" for c, (lo, hi) in zip("RGB", f.header.residual_ranges)))
    lines += [
        f"  metadata           {describe_metadata(f.metadata)}",
        f"  pixel checksum     {h.checksum.hex()}",
        f"  total              {file_bytes} bytes, {8 * file_bytes / sub:.4f} bpsp",
        f"    lossy layer      {lossy} bytes, {8 * lossy / sub:.4f} bpsp",
        *(f"      {part:<14} {n} bytes, {8 * n / sub:.4f} bpsp" for part, n in _payload_parts(h.backend_id, tiles).items()),
    ]
    kept = [f"    metadata         {metadata} bytes"] if metadata else []
    if sequential:
        bound = max(t.header.max_error for t in tiles)
        return lines + [
            "  error bound        " + (f"near-lossless: every subpixel within {bound} of the original "
                                      "(the checksum is of the decoded image)" if bound else "0 (lossless)"),
            f"    residual layer   {residual} bytes, {8 * residual / sub:.4f} bpsp (one sequential stream"
            + (" per tile)" if isinstance(f, TiledFile) else ")"),
            *kept,
            f"    header           {file_bytes - lossy - residual - metadata} bytes",
        ]
    lines += [
        (f"    residual layer   {residual} bytes, {8 * residual / sub:.4f} bpsp "
        f"(R {per_channel[0]}, G {per_channel[1]}, B {per_channel[2]}; "
        f"{'/'.join(map(str, sorted(passes)))} coding pass(es); escapes {escapes} bytes)"),
        f"    model update     {sum(updates)} bytes"
        + (f" ({len(updates)} of {len(tiles)} tiles)" if isinstance(f, TiledFile) else ""),
        *kept,
        f"    header           {file_bytes - lossy - residual - sum(updates) - metadata} bytes",
        f"  adaptation         {sum(sent.values())} streams: "
        + ", ".join(f"{n} with {k} parameter(s)" for k, n in sorted(sent.items(), reverse=True)),
        "  error feedback     " + (f"{fed} of {len(tiles)} tiles" if isinstance(f, TiledFile) else ("on" if fed else "off")),
    ]
    return lines
