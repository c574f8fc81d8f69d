"""Tiled coding: an image with a side longer than the tile size is coded as independent tiles
(a version-4 file); the result is exact, the same for any number of workers, and damaged tiled
files fail cleanly."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest

from lossless_bpg.codec import compress, decode_bands, decompress
from lossless_bpg.container import (
    FLAG_ERROR_FEEDBACK,
    MIN_TILE_SIZE,
    TILE_STEP_ALIGN,
    TILED_VERSION,
    UPDATE_VERSION,
    VERSION,
    TiledFile,
    pack_tiled,
    tile_grid,
    unpack,
)
from lossless_bpg.errors import ChecksumError, FormatError
from lossless_bpg.varint import read_varint, write_varint

TILE = MIN_TILE_SIZE


def _photo_like(height: int, width: int, seed: int = 7) -> np.ndarray:
    """Smooth gradients, an edge and noise: residuals of every size."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 0.6, yy * 0.5, (xx + yy) * 0.3], -1) + 60 * (xx > width // 3)[..., None]
    return np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return _photo_like(300, 280)  # 2 x 2 tiles of at most 256


@pytest.fixture(scope="module")
def tiled(model, image):
    return compress(image, model, quality=30, tile_size=TILE)


@pytest.mark.parametrize("height,width,size", [(4000, 6000, 1024), (1030, 2049, 1024), (300, 280, 256),
                                               (257, 9, 256), (1, 100000, 4096), (5000, 5000, 4992)])
def test_the_grid_covers_the_image_once_in_tiles_no_larger_than_the_tile_size(height, width, size):
    grid = tile_grid(height, width, size)
    covered = np.zeros((height, width), np.uint8) if height * width < 1e8 else None
    for t in grid:
        assert 1 <= t.height <= size and 1 <= t.width <= size
        assert t.top % TILE_STEP_ALIGN == 0 and t.left % TILE_STEP_ALIGN == 0
        if covered is not None:
            covered[t.top : t.bottom, t.left : t.right] += 1
    if covered is not None:
        assert (covered == 1).all()
    assert grid[-1].bottom == height and grid[-1].right == width


def test_tile_sizes_outside_the_format_are_refused():
    for size in (0, 100, 1000, MIN_TILE_SIZE - 64, 1 << 16):
        with pytest.raises(ValueError, match="tile size"):
            tile_grid(500, 500, size)


def test_a_tiled_image_round_trips_exactly(model, image, tiled):
    f = unpack(tiled.data)
    assert isinstance(f, TiledFile) and f.header.version == TILED_VERSION and len(f.tiles) == 4
    assert all(t.header.version in (VERSION, UPDATE_VERSION) for t in f.tiles)
    out, header = decompress(tiled.data, model)
    assert np.array_equal(out, image) and header.tile_size == TILE
    assert tiled.tile_qs == (30,) * 4 and tiled.q == 30
    assert tiled.lossy_bytes + tiled.residual_bytes + tiled.header_bytes == len(tiled.data)


def test_an_image_within_one_tile_is_coded_whole_as_before(model):
    small = _photo_like(TILE, 40)
    whole = compress(small, model, quality=30, tile_size=None)
    assert compress(small, model, quality=30, tile_size=TILE).data == whole.data
    assert unpack(whole.data).header.version in (VERSION, UPDATE_VERSION)


def test_the_file_is_the_same_for_any_number_of_workers_and_decodes_the_same(model, image, tiled):
    assert compress(image, model, quality=30, tile_size=TILE, workers=2).data == tiled.data
    out, _ = decompress(tiled.data, model, workers=2)
    assert np.array_equal(out, image)


def test_each_tile_searches_its_own_q(model):
    # left half flat, right half noisy: their best Q differ
    image = _photo_like(64, 512)
    image[:, 256:] = np.random.default_rng(3).integers(0, 256, (64, 256, 3), dtype=np.uint8)
    result = compress(image, model, effort=2, tile_size=TILE)
    assert len(result.tile_qs) == 2 and result.tile_qs[0] != result.tile_qs[1]
    assert np.array_equal(decompress(result.data, model)[0], image)


def test_bands_are_whole_rows_of_tiles_top_to_bottom(model, image, tiled):
    decoding = decode_bands(tiled.data, model)
    bands = list(decoding.bands)
    assert [b.shape for b in bands] == [(152, 280, 3), (148, 280, 3)]
    assert np.array_equal(np.concatenate(bands), image)


def test_progress_counts_every_tile(model, image, tiled):
    seen: list[tuple[int, int]] = []
    compress(image, model, quality=30, tile_size=TILE, tile_progress=lambda d, n: seen.append((d, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    seen.clear()
    decompress(tiled.data, model, tile_progress=lambda d, n: seen.append((d, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_wrong_image_checksum_fails_before_the_last_band(model, tiled):
    f = unpack(tiled.data)
    assert isinstance(f, TiledFile)
    forged = pack_tiled(replace(f, header=replace(f.header, checksum=bytes(16))))
    bands = decode_bands(forged, model).bands
    next(bands)  # the first row of tiles is correct on its own
    with pytest.raises(ChecksumError):
        next(bands)


def test_every_truncation_and_header_byte_corruption_fails_cleanly(tiled):
    data = tiled.data
    for n in list(range(80)) + [len(data) // 2, len(data) - 1]:
        with pytest.raises(FormatError):
            unpack(data[:n])
    for i in range(60):  # the tiled header, the tile lengths and into the first tile
        broken = bytearray(data)
        broken[i] ^= 0x41
        with pytest.raises(FormatError):
            unpack(bytes(broken))


def _split(data: bytes) -> tuple[bytes, int, list[bytes], bytes]:
    """(magic..width, tile size, tile blobs, checksum) of a tiled file."""
    pos = 8 + 8
    for _ in range(2):
        _, pos = read_varint(data, pos)
    prefix = data[:pos]
    tile_size, pos = read_varint(data, pos)
    count, pos = read_varint(data, pos)
    lengths = []
    for _ in range(count):
        n, pos = read_varint(data, pos)
        lengths.append(n)
    checksum = data[pos : pos + 16]
    pos += 20
    blobs = []
    for n in lengths:
        blobs.append(data[pos : pos + n])
        pos += n
    return prefix, tile_size, blobs, checksum


def _join(prefix: bytes, tile_size: int, blobs: list[bytes], checksum: bytes) -> bytes:
    """A tiled file with a valid header CRC around whatever it is given."""
    head = prefix + write_varint(tile_size) + write_varint(len(blobs))
    head += b"".join(write_varint(len(b)) for b in blobs) + checksum
    return head + zlib.crc32(head).to_bytes(4, "big") + b"".join(blobs)


def test_splitting_and_joining_a_file_gives_it_back(tiled):
    assert _join(*_split(tiled.data)) == tiled.data


def test_a_tile_count_that_does_not_match_the_grid_is_refused(tiled):
    prefix, size, blobs, checksum = _split(tiled.data)
    with pytest.raises(FormatError, match="lists 3 tiles"):
        unpack(_join(prefix, size, blobs[:3], checksum))
    with pytest.raises(FormatError, match="lists 4 tiles.*has 1"):
        unpack(_join(prefix, size + 64, blobs, checksum))
    with pytest.raises(FormatError, match="tile size"):
        unpack(_join(prefix, 100, blobs, checksum))


def test_tiles_in_the_wrong_place_or_from_another_file_are_refused(model, tiled):
    prefix, size, blobs, checksum = _split(tiled.data)
    with pytest.raises(FormatError, match="tile 0 is 136x152, the grid says 144x152"):
        unpack(_join(prefix, size, [blobs[1], blobs[0], *blobs[2:]], checksum))
    with pytest.raises(FormatError, match="not a whole-image file"):
        unpack(_join(prefix, size, [tiled.data[:0] + b"LBPG\x04" + blobs[0][5:], *blobs[1:]], checksum))
    grey = compress(np.zeros((152, 144, 3), np.uint8), model, quality=30, greyscale=True).data
    with pytest.raises(FormatError, match="differs from the file's header"):
        unpack(_join(prefix, size, [grey, *blobs[1:]], checksum))
    with pytest.raises(ValueError, match="tiles"):
        f = unpack(tiled.data)
        assert isinstance(f, TiledFile)
        pack_tiled(replace(f, tiles=f.tiles[:3]))


def test_a_tile_whose_search_stops_on_a_plateau_searches_again_from_the_tiles_median_q(model, monkeypatch):
    from lossless_bpg import codec

    image = _photo_like(64, 3 * TILE)
    first_tile = image[:, :TILE].copy()
    start = model.q_start or codec.Q_START
    best_q = start - 4
    real_try_q = codec.try_q

    def estimate(tile: np.ndarray, q: int, *args):
        # every tile is cheapest at best_q, but the first one has a plateau at high Q that its
        # own search (scan start-8, start, start+8, then steps of 2 and 1) cannot leave
        cost = float((q - best_q) ** 2)
        if np.array_equal(tile, first_tile):
            cost = 10.0 if q >= start + 4 else cost + 5
        return replace(real_try_q(tile, q, *args), total_bits=cost)

    monkeypatch.setattr(codec, "try_q", estimate)
    result = compress(image, model, effort=2, tile_size=TILE, workers=2)
    assert result.tile_qs == (best_q,) * 3
    assert np.array_equal(decompress(result.data, model)[0], image)


def test_a_tiled_header_refuses_the_error_feedback_flag(tiled):
    # the flag belongs to each tile's own header, where the tile's residual is described
    data = bytearray(tiled.data)
    data[5] |= FLAG_ERROR_FEEDBACK
    with pytest.raises(FormatError, match="flags"):
        unpack(bytes(data))
