"""Near-lossless mode (``max_error`` T): every decoded subpixel within T of the original,
guaranteed by construction (the prediction error quantised with step 2T + 1 in the coder's
loop) and checked (the file's checksum is of the decoded image)."""

from __future__ import annotations

import numpy as np
import pytest

import lossless_bpg
from lossless_bpg.cli import main
from lossless_bpg.container import TiledFile, unpack
from lossless_bpg.errors import ChecksumError, FormatError


def _photo(seed: int = 5, h: int = 40, w: int = 56) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 3.0 + yy, yy * 2.0 + 20, (xx + yy) * 1.5 + 10], axis=-1)
    base[: h // 2, w // 3 :] += 60
    return np.clip(base + rng.normal(0, 7, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("bound", [1, 2, 3, 5, 127])
def test_every_subpixel_is_within_the_bound_and_the_file_records_it(bound):
    image = _photo()
    image[0, 0] = (0, 255, 128)  # the ends of the range too
    data = lossless_bpg.compress(image, max_error=bound)
    header = unpack(data).header
    assert header.max_error == bound
    out = lossless_bpg.decompress(data)
    assert out.shape == image.shape
    assert int(np.abs(out.astype(int) - image).max()) <= bound


def test_a_larger_bound_costs_fewer_bytes_and_zero_is_the_lossless_file():
    image = _photo()
    sizes = [len(lossless_bpg.compress(image, max_error=t, quality=51)) for t in (0, 1, 2, 4)]
    assert sizes == sorted(sizes, reverse=True) and sizes[1] < 0.8 * sizes[0]
    assert lossless_bpg.compress(image, max_error=0) == lossless_bpg.compress(image)


def test_the_checksum_is_of_the_decoded_image_and_damage_is_caught():
    from ..fuzzing import parts_of

    image = _photo()
    data = lossless_bpg.compress(image, max_error=2)
    parts = parts_of(data)
    assert parts.max_error == b"\x02"  # type: ignore[union-attr]
    parts.max_error = b"\x03"  # type: ignore[union-attr]  # another bound: other values, caught
    with pytest.raises((ChecksumError, FormatError)):
        lossless_bpg.decompress(parts.to_bytes())
    parts.max_error = b"\xc8"  # type: ignore[union-attr]  # 200: more than any bound
    with pytest.raises(FormatError, match="impossible error bound"):
        lossless_bpg.decompress(parts.to_bytes())


def test_greyscale_and_tiled_images_keep_the_bound():
    grey = _photo()[..., 1].copy()
    out = lossless_bpg.decompress(lossless_bpg.compress(grey, max_error=3))
    assert out.shape == grey.shape and int(np.abs(out.astype(int) - grey).max()) <= 3
    wide = _photo(7, 24, 560)
    data = lossless_bpg.compress(wide, max_error=2, tile_size=256)
    f = unpack(data)
    assert isinstance(f, TiledFile) and {t.header.max_error for t in f.tiles} == {2}
    assert int(np.abs(lossless_bpg.decompress(data).astype(int) - wide).max()) <= 2


def test_bounds_the_coder_cannot_take_are_refused():
    image = _photo(h=8, w=8)
    for bad in (-1, 128, 1.5, True):
        with pytest.raises(ValueError, match="max_error"):
            lossless_bpg.compress(image, max_error=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs the sequential coder"):
        lossless_bpg.compress(image, max_error=1, model="parallel")


def test_the_command_line_takes_the_bound_reports_the_measured_error_and_info_shows_it(tmp_path, capsys):
    from PIL import Image

    src = tmp_path / "photo.png"
    Image.fromarray(_photo()).save(src)
    for bad in ("-1", "128", "1.5", "x"):
        with pytest.raises(SystemExit) as exit_:
            main(["compress", str(src), "--max-error", bad])
        assert exit_.value.code == 2
    capsys.readouterr()
    assert main(["compress", str(src), "-o", str(tmp_path / "out"), "--max-error", "2", "--verify"]) == 0
    report = capsys.readouterr().out
    assert "max error" in report and "verified within the bound" in report
    assert main(["info", str(tmp_path / "out" / "photo.lbpg")]) == 0
    assert "within 2 of the original" in capsys.readouterr().out
    assert main(["decompress", str(tmp_path / "out" / "photo.lbpg"), "--quiet"]) == 0
    decoded = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert int(np.abs(decoded.astype(int) - _photo()).max()) <= 2
