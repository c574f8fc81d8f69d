"""The command line: exit codes, safety of outputs and inputs, errors for bad input."""

import hashlib
import os
import signal
import stat
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from lossless_bpg.cli import main


def _png(path, array, mode=None):
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def photo(tmp_path, rng):
    base = np.linspace(0, 255, 48)[None, :, None] * np.ones((40, 1, 3))
    img = np.clip(base + rng.normal(0, 5, (40, 48, 3)), 0, 255).astype(np.uint8)
    return _png(tmp_path / "photo.png", img), img


def test_compress_decompress_info_round_trip(tmp_path, photo, capsys):
    src, img = photo
    before = _digest(src)
    out = tmp_path / "out"
    assert main(["compress", str(src), "-o", str(out), "-q", "30", "--verify"]) == 0
    assert _digest(src) == before, "input must never be modified"
    lbpg = out / "photo.lbpg"
    assert lbpg.exists()
    assert "verified bit-exact" in capsys.readouterr().out
    assert main(["info", str(lbpg)]) == 0
    info = capsys.readouterr().out
    assert "Q=30" in info and "lossy layer" in info and "residual layer" in info
    assert "container version  6" in info and "sequential coder, effort 2" in info
    assert "one sequential stream" in info
    dec = tmp_path / "dec"
    assert main(["decompress", str(lbpg), "-o", str(dec)]) == 0
    assert np.array_equal(np.asarray(Image.open(dec / "photo.png")), img)


def test_existing_output_needs_force(tmp_path, photo):
    src, _ = photo
    target = tmp_path / "photo.lbpg"
    target.write_bytes(b"precious")
    assert main(["compress", str(src), "-q", "30", "--quiet"]) == 1
    assert target.read_bytes() == b"precious"
    assert main(["compress", str(src), "-q", "30", "--quiet", "--force"]) == 0
    assert target.read_bytes()[:4] == b"LBPG"
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"


def test_decompress_does_not_overwrite_without_force(tmp_path, photo):
    src, _ = photo
    before = _digest(src)
    assert main(["compress", str(src), "-q", "30", "--quiet"]) == 0
    assert main(["decompress", str(tmp_path / "photo.lbpg"), "--quiet"]) == 1  # photo.png exists
    assert _digest(src) == before


def test_greyscale_png_comes_back_greyscale(tmp_path, rng):
    grey = rng.integers(0, 256, (24, 30), dtype=np.uint8)
    src = _png(tmp_path / "g.png", grey, "L")
    assert main(["compress", str(src), "-q", "30", "--quiet", "-o", str(tmp_path / "c")]) == 0
    assert main(["decompress", str(tmp_path / "c" / "g.lbpg"), "--quiet", "-o", str(tmp_path / "d")]) == 0
    back = Image.open(tmp_path / "d" / "g.png")
    assert back.mode == "L" and np.array_equal(np.asarray(back), grey)


@pytest.mark.parametrize(
    "kind,message",
    [
        ("rgba", "alpha"),
        ("palette", "palette"),
        ("sixteen", "unsupported pixel mode"),
        ("cmyk", "unsupported pixel mode"),
        ("truncated", "cannot read image"),
        ("text", "cannot read image"),
        ("rgb16_png", "16-bit"),  # Pillow opens it as 'RGB' and keeps the high byte
        ("two_frame_apng", "2 frames"),
    ],
)
def test_unsupported_inputs_get_a_clear_error(tmp_path, rng, capsys, kind, message):
    path = tmp_path / ("in.jpg" if kind == "cmyk" else "in.png")
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    if kind == "rgba":
        _png(path, np.dstack([rgb, np.full((16, 16), 128, np.uint8)]))
    elif kind == "palette":
        Image.fromarray(rgb).convert("P").save(path)
    elif kind == "sixteen":
        Image.fromarray(rng.integers(0, 65535, (16, 16), dtype=np.uint16)).save(path)
    elif kind == "cmyk":
        Image.fromarray(rgb).convert("CMYK").save(path)
    elif kind == "rgb16_png":
        from tests.test_imageio import png_bytes

        path.write_bytes(png_bytes(rng.integers(0, 65536, (16, 16, 3), dtype=np.uint16), 16, 2))
    elif kind == "two_frame_apng":
        frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
        frames[0].save(path, save_all=True, append_images=frames[1:])
    elif kind == "truncated":
        _png(path, rgb)
        path.write_bytes(path.read_bytes()[:60])
    else:
        path.write_text("not an image")
    before = _digest(path)
    assert main(["compress", str(path), "--quiet", "--force"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Supported" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "nothing may be written"
    assert _digest(path) == before


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_files_fail_without_output(tmp_path, photo, capsys, damage):
    src, _ = photo
    assert main(["compress", str(src), "-q", "30", "--quiet", "-o", str(tmp_path / "c")]) == 0
    lbpg = tmp_path / "c" / "photo.lbpg"
    data = bytearray(lbpg.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = bytearray(b"hello world, not lbpg")
    lbpg.write_bytes(bytes(data))
    assert main(["decompress", str(lbpg), "--quiet", "-o", str(tmp_path / "d")]) == 1
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "d" / "photo.png").exists()
    assert not list((tmp_path / "d").glob("*")) if (tmp_path / "d").exists() else True


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["compress"])
    assert exc.value.code == 2


def test_missing_input_is_an_error(tmp_path, capsys):
    assert main(["compress", str(tmp_path / "nope.png"), "--quiet"]) == 1
    assert "nope.png" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
@pytest.mark.parametrize("command, name", [("compress", "in.png"), ("decompress", "in.lbpg"), ("info", "in.lbpg")])
def test_a_named_pipe_as_input_is_an_error_not_a_hang(tmp_path, capsys, command, name):
    pipe = tmp_path / name
    os.mkfifo(pipe)  # nobody writes to it: reading it would wait forever
    argv = [command, str(pipe)] + (["-o", str(tmp_path / "out"), "--quiet"] if command != "info" else [])
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{pipe}: is a named pipe, not a regular file" in err and err.count(str(pipe)) == 1
    assert not (tmp_path / "out").exists()


def test_info_without_lbpg_files_says_so(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 1
    assert "no .lbpg files found" in capsys.readouterr().err


def test_unavailable_backend_is_an_error(photo, capsys, monkeypatch, tmp_path):
    from lossless_bpg.lossy import bpg

    src, _ = photo
    monkeypatch.setattr(bpg, "find_program", lambda _name: None)  # libbpg built nowhere
    assert main(["compress", str(src), "--backend", "bpg", "-q", "30", "--quiet"]) == 1
    assert "bpgenc" in capsys.readouterr().err


def test_quality_outside_the_range_is_an_error(photo, capsys):
    src, _ = photo
    assert main(["compress", str(src), "-q", "60", "--quiet"]) == 1
    assert "quality 60 outside [0, 51]" in capsys.readouterr().err


def test_inputs_that_would_share_an_output_are_refused_before_any_work(tmp_path, photo, capsys):
    src, img = photo
    other = tmp_path / "other"
    other.mkdir()
    _png(other / "photo.png", img[::-1].copy())
    out = tmp_path / "out"
    assert main(["compress", str(src), str(other / "photo.png"), "-o", str(out), "--force", "-q", "30"]) == 2
    assert "same output file" in capsys.readouterr().err
    assert not out.exists() or not list(out.iterdir()), "nothing may be written"


def test_output_may_name_the_one_file_to_write(tmp_path, photo):
    src, img = photo
    packed = tmp_path / "sub" / "kept.lbpg"
    assert main(["compress", str(src), "-o", str(packed), "-q", "30", "--quiet"]) == 0
    assert packed.is_file() and packed.read_bytes()[:4] == b"LBPG"
    restored = tmp_path / "back" / "restored.PNG"
    assert main(["decompress", str(packed), "-o", str(restored), "--quiet"]) == 0
    assert np.array_equal(np.asarray(Image.open(restored)), img)
    assert main(["compress", str(src), "-o", str(packed), "-q", "30", "--quiet"]) == 1, "exists: needs --force"


def test_a_folder_gives_every_readable_format_including_jpeg_and_pgm(tmp_path, photo):
    _, img = photo
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(img).save(folder / "camera.JPG", quality=90)
    Image.fromarray(img[..., 1]).save(folder / "scan.pgm")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert main(["compress", str(folder), "-o", str(out), "-q", "30", "--quiet", "--verify"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["camera.lbpg", "scan.lbpg"]


def test_an_existing_folder_named_like_a_file_stays_a_folder(tmp_path, photo):
    src, _ = photo
    folder = tmp_path / "archive.lbpg"
    folder.mkdir()
    assert main(["compress", str(src), "-o", str(folder), "-q", "30", "--quiet"]) == 0
    assert (folder / "photo.lbpg").is_file()


@pytest.mark.parametrize("argv_tail, message", [
    (["-o", "{tmp}/both.lbpg"], "names one .lbpg file but 2 inputs"),
    (["-o", "{tmp}/wrong.png"], "writes .lbpg files"),
])
def test_an_output_file_name_that_cannot_be_meant_is_refused(tmp_path, photo, capsys, argv_tail, message):
    src, img = photo
    second = _png(tmp_path / "second.png", img[::-1].copy())
    inputs = [str(src), str(second)] if "both" in argv_tail[1] else [str(src)]
    argv = ["compress", *inputs, *[a.format(tmp=tmp_path) for a in argv_tail], "-q", "30", "--quiet"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "both.lbpg").exists() and not (tmp_path / "wrong.png").exists()


def test_decompress_refuses_an_output_file_it_cannot_write(tmp_path, photo, capsys):
    src, _ = photo
    assert main(["compress", str(src), "-q", "30", "--quiet"]) == 0
    assert main(["decompress", str(tmp_path / "photo.lbpg"), "-o", str(tmp_path / "x.tif"), "--quiet"]) == 2
    assert "writes .png files" in capsys.readouterr().err


def test_thread_count_option_round_trips_at_any_count(tmp_path, photo):
    import torch

    src, img = photo
    before = torch.get_num_threads()
    try:
        assert main(["compress", str(src), "-o", str(tmp_path / "a"), "-q", "30", "--quiet", "--threads", "1"]) == 0
        assert main(["compress", str(src), "-o", str(tmp_path / "b"), "-q", "30", "--quiet", "--threads", "3"]) == 0
        for name, threads in (("a", "2"), ("b", "1")):
            lbpg = tmp_path / name / "photo.lbpg"
            assert main(["decompress", str(lbpg), "-o", str(tmp_path / name), "--threads", threads]) == 0
            assert np.array_equal(np.asarray(Image.open(tmp_path / name / "photo.png")), img)
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        main(["decompress", "x.lbpg", "--threads", "0"])


@pytest.mark.parametrize("trick", ["same_name", "hard_link", "symbolic_link"])
def test_an_output_that_is_an_input_is_refused_even_with_force(tmp_path, photo, capsys, trick):
    src, _ = photo
    assert main(["compress", str(src), "-q", "30", "--quiet", "-o", str(tmp_path / "c")]) == 0
    lbpg = tmp_path / "c" / "photo.lbpg"
    if trick == "same_name":  # an .lbpg file named .png: decompressing it would write over it
        victim = tmp_path / "d" / "photo.png"
        victim.parent.mkdir()
        victim.write_bytes(lbpg.read_bytes())
        argv = ["decompress", str(victim), "-o", str(victim.parent)]
    else:  # the output name is a link to the input
        out = tmp_path / "links"
        out.mkdir()
        victim = lbpg
        (os.link if trick == "hard_link" else os.symlink)(lbpg, out / "photo.png")
        argv = ["decompress", str(lbpg), "-o", str(out)]
    before = _digest(victim)
    assert main([*argv, "--force", "--quiet"]) == 2
    assert "would replace an input" in capsys.readouterr().err
    assert _digest(victim) == before


def test_compress_refuses_to_write_over_an_image_named_like_its_output(tmp_path, photo, capsys):
    src, _ = photo
    disguised = tmp_path / "y.lbpg"
    disguised.write_bytes(src.read_bytes())  # a PNG that happens to be called y.lbpg
    before = _digest(disguised)
    assert main(["compress", str(disguised), "-q", "30", "--force", "--quiet"]) == 2
    assert "would replace an input" in capsys.readouterr().err
    assert _digest(disguised) == before


def test_outputs_get_the_permissions_of_a_newly_created_file(tmp_path, photo):
    src, _ = photo
    old = os.umask(0o027)
    try:
        assert main(["compress", str(src), "-q", "30", "--quiet", "-o", str(tmp_path / "c")]) == 0
        assert main(["decompress", str(tmp_path / "c" / "photo.lbpg"), "--quiet", "-o", str(tmp_path / "d")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c" / "photo.lbpg").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "d" / "photo.png").stat().st_mode) == 0o640


def test_ctrl_c_stops_a_long_compress_at_once_and_leaves_nothing(tmp_path, rng):
    base = np.linspace(0, 255, 1024)[None, :, None] * np.ones((1024, 1, 3))
    big = np.clip(base + rng.normal(0, 8, (1024, 1024, 3)), 0, 255).astype(np.uint8)
    src = _png(tmp_path / "big.png", big)
    out = tmp_path / "out"
    # Ctrl-C handled as in a terminal, even where this test run was started in the background by
    # a non-interactive shell (its processes inherit SIGINT ignored, and Python keeps it so).
    start = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from lossless_bpg.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", start, "compress", str(src), "-o", str(out), "-e", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # well inside the Q search: x265 encodes and network sweeps
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 130 and "interrupted" in err
    assert not out.exists() or not list(out.iterdir()), "nothing may be left behind"


@pytest.fixture(scope="module")
def wide_photo(tmp_path_factory):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:40, 0:300]
    img = np.clip(np.stack([xx * 0.8, yy * 3.0, (xx + yy) * 0.4], -1) + rng.normal(0, 4, (40, 300, 3)), 0, 255)
    folder = tmp_path_factory.mktemp("wide")
    return _png(folder / "wide.png", img.astype(np.uint8)), img.astype(np.uint8)


def test_a_large_image_is_coded_in_tiles_and_decoded_band_by_band(tmp_path, wide_photo, capsys):
    src, img = wide_photo
    out, dec = tmp_path / "out", tmp_path / "dec"
    assert main(["compress", str(src), "-o", str(out), "-q", "30", "--tile-size", "256", "--verify"]) == 0
    assert "verified bit-exact" in capsys.readouterr().out
    assert main(["info", str(out / "wide.lbpg")]) == 0
    info = capsys.readouterr().out
    assert "container version  4" in info and "tiles              2 (nominal side 256" in info
    assert "Q per tile: 30 (2 tiles)" in info
    assert main(["decompress", str(out / "wide.lbpg"), "-o", str(dec), "--tile-workers", "2"]) == 0
    assert np.array_equal(np.asarray(Image.open(dec / "wide.png")), img)


def test_tile_workers_do_not_change_the_file_and_tile_size_0_codes_whole(tmp_path, wide_photo):
    src, _ = wide_photo
    runs = {}
    for name, extra in {"one": [], "two": ["--tile-workers", "2"], "whole": ["--tile-size", "0"]}.items():
        assert main(["compress", str(src), "-o", str(tmp_path / name), "-q", "30", "--tile-size", "256",
                     "--quiet", *extra]) == 0
        runs[name] = (tmp_path / name / "wide.lbpg").read_bytes()
    assert runs["one"] == runs["two"]
    assert runs["whole"][4] == 6 and runs["one"][4] == 4  # container versions (6: the sequential coder)


@pytest.mark.parametrize("size", ["100", "300", "-64"])
def test_tile_sizes_the_format_does_not_allow_are_usage_errors(photo, size, capsys):
    src, _ = photo
    with pytest.raises(SystemExit) as exc:
        main(["compress", str(src), "--tile-size", size])
    assert exc.value.code == 2
    assert "multiple of 64" in capsys.readouterr().err


def test_tiles_decode_in_threads_in_a_fresh_process(tmp_path, wide_photo):
    """The first use of the native coder happens in several tile threads at once."""
    src, img = wide_photo
    assert main(["compress", str(src), "-o", str(tmp_path), "-q", "30", "--tile-size", "256", "--quiet"]) == 0
    done = subprocess.run([sys.executable, "-m", "lossless_bpg", "decompress", str(tmp_path / "wide.lbpg"),
                           "-o", str(tmp_path / "dec"), "--tile-workers", "2", "--quiet"],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.asarray(Image.open(tmp_path / "dec" / "wide.png")), img)


def _chunks(path) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks as (type, payload), in file order, each CRC checked."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        payload = data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + payload)
        out.append((kind, payload))
        pos += 12 + length
    return out


def _metadata_chunks(path) -> list[tuple[bytes, bytes]]:
    return [(k, d) for k, d in _chunks(path) if k not in (b"IHDR", b"IDAT", b"IEND")]


PROFILE = b"an ICC profile, as far as this test cares " * 75
XMP = "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF/></x:xmpmeta>"


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Camera"
    return exif.tobytes()


@pytest.fixture
def tagged_png(tmp_path, photo):
    """The photo with an ICC profile, EXIF (orientation 6), XMP, tEXt, zTXt, gAMA and cHRM."""
    from PIL import PngImagePlugin

    _, img = photo
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "A title")
    info.add_text("Author", "Someone", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP)
    info.add(b"gAMA", struct.pack(">I", 45455))
    info.add(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    path = tmp_path / "tagged.png"
    Image.fromarray(img).save(path, pnginfo=info, icc_profile=PROFILE, exif=_exif(6))
    assert {k for k, _ in _metadata_chunks(path)} == {b"iCCP", b"eXIf", b"iTXt", b"tEXt", b"zTXt", b"gAMA", b"cHRM"}
    return path, img


def test_metadata_round_trips_into_the_decoded_png_with_identical_payloads(tmp_path, tagged_png, capsys):
    src, img = tagged_png
    assert main(["compress", str(src), "-o", str(tmp_path / "c.lbpg"), "-q", "30", "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err, "everything the file carries is kept"
    assert main(["decompress", str(tmp_path / "c.lbpg"), "-o", str(tmp_path / "d.png"), "--quiet"]) == 0
    assert _metadata_chunks(tmp_path / "d.png") == _metadata_chunks(src)  # same payloads, same order
    kinds = [k for k, _ in _chunks(tmp_path / "d.png")]
    assert kinds[0] == b"IHDR" and kinds.index(b"IDAT") > max(kinds.index(k) for k in (b"iCCP", b"eXIf", b"gAMA"))
    decoded = Image.open(tmp_path / "d.png")
    assert np.array_equal(np.asarray(decoded), img)
    assert decoded.info["icc_profile"] == PROFILE and decoded.getexif()[0x0112] == 6
    assert decoded.text["Title"] == "A title" and decoded.text["XML:com.adobe.xmp"] == XMP


def test_info_lists_the_metadata_a_file_carries(tmp_path, tagged_png, photo, capsys):
    (src, _), (plain, _) = tagged_png, photo
    assert main(["compress", str(src), str(plain), "-o", str(tmp_path / "c"), "-q", "30", "--quiet"]) == 0
    assert main(["info", str(tmp_path / "c" / "tagged.lbpg"), str(tmp_path / "c" / "photo.lbpg")]) == 0
    out = capsys.readouterr().out
    assert ("  metadata           ICC profile (3,150 bytes), XMP (58 bytes), gamma 0.45455, chromaticities, "
            "EXIF (orientation 6), text: Title, Author\n") in out  # in the file's order, text last
    assert "  metadata           none\n" in out


def test_a_jpegs_profile_and_exif_arrive_in_the_png(tmp_path, photo):
    _, img = photo
    src = tmp_path / "shot.jpg"
    exif = _exif(8)
    Image.fromarray(img).save(src, "JPEG", quality=95, icc_profile=PROFILE, exif=exif)
    jpeg_pixels = np.asarray(Image.open(src))  # what is coded: the JPEG's decoded pixels, exactly
    assert main(["compress", str(src), "-o", str(tmp_path / "c.lbpg"), "-q", "30", "--quiet"]) == 0
    assert main(["decompress", str(tmp_path / "c.lbpg"), "-o", str(tmp_path / "d.png"), "--quiet"]) == 0
    chunks = dict(_metadata_chunks(tmp_path / "d.png"))
    name, rest = chunks[b"iCCP"].split(b"\0", 1)
    assert name == b"ICC Profile" and rest[0] == 0 and zlib.decompress(rest[1:]) == PROFILE
    assert chunks[b"eXIf"] == exif[len(b"Exif\0\0") :]  # the TIFF structure, as PNG wants it
    decoded = Image.open(tmp_path / "d.png")
    assert np.array_equal(np.asarray(decoded), jpeg_pixels)
    assert decoded.getexif()[0x0112] == 8, "the orientation stays a tag; the pixels are not turned"


def test_a_tiled_file_keeps_the_metadata_once(tmp_path, wide_photo, capsys):
    _, img = wide_photo
    src = tmp_path / "wide.png"
    Image.fromarray(img).save(src, icc_profile=PROFILE, exif=_exif(3))
    out = tmp_path / "w.lbpg"
    assert main(["compress", str(src), "-o", str(out), "-q", "30", "--tile-size", "256", "--quiet"]) == 0
    data = out.read_bytes()
    assert data[4] == 4 and data.count(_exif(3)[6:]) == 1  # a tiled file, its EXIF in the tiled header only
    assert main(["info", str(out)]) == 0
    assert "metadata           ICC profile (3,150 bytes), EXIF (orientation 3)" in capsys.readouterr().out
    assert main(["decompress", str(out), "-o", str(tmp_path / "d.png"), "--quiet"]) == 0
    assert _metadata_chunks(tmp_path / "d.png") == _metadata_chunks(src)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.png")), img)


def test_strip_stores_pixels_only_and_says_what_was_dropped(tmp_path, tagged_png, photo, capsys):
    (src, img), (plain, _) = tagged_png, photo
    out = tmp_path / "s"
    assert main(["compress", str(src), str(plain), "-o", str(out), "-q", "30", "--quiet", "--strip"]) == 0
    err = capsys.readouterr().err
    assert (f"warning: {src}: not stored (--strip): ICC profile (3,150 bytes), XMP (58 bytes), gamma 0.45455, "
            "chromaticities, EXIF (orientation 6), text: Title, Author; viewers will not rotate or mirror the decoded "
            "PNG as they do the source (orientation 6)") in err
    assert str(plain) not in err, "a file without metadata gets no warning"
    assert main(["compress", str(plain), "-o", str(tmp_path / "plain.lbpg"), "-q", "30", "--quiet"]) == 0
    assert (out / "photo.lbpg").read_bytes() == (tmp_path / "plain.lbpg").read_bytes()
    stripped = (out / "tagged.lbpg").read_bytes()
    assert not stripped[5] & 0x04  # no metadata flag
    assert main(["decompress", str(out / "tagged.lbpg"), "-o", str(tmp_path / "d.png"), "--quiet"]) == 0
    assert _metadata_chunks(tmp_path / "d.png") == []
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.png")), img)


def test_chunks_that_are_not_kept_are_named_but_the_file_is_done(tmp_path, photo, capsys):
    _, img = photo
    odd = tmp_path / "odd.png"
    Image.fromarray(img).save(odd, icc_profile=PROFILE)
    data = odd.read_bytes()
    chunk = struct.pack(">I", 9) + b"vpAg" + bytes(9) + struct.pack(">I", zlib.crc32(b"vpAg" + bytes(9)))
    odd.write_bytes(data[:33] + chunk + data[33:])
    assert main(["compress", str(odd), "-o", str(tmp_path / "out"), "-q", "30", "--quiet"]) == 0
    assert f"warning: {odd}: not stored: PNG chunks vpAg (kinds not kept)" in capsys.readouterr().err
    assert main(["decompress", str(tmp_path / "out" / "odd.lbpg"), "-o", str(tmp_path / "d.png"), "--quiet"]) == 0
    assert [k for k, _ in _metadata_chunks(tmp_path / "d.png")] == [b"iCCP"]


def test_a_preview_keeps_the_metadata_too(tmp_path, tagged_png):
    src, _ = tagged_png
    assert main(["compress", str(src), "-o", str(tmp_path / "c.lbpg"), "-q", "30", "--quiet"]) == 0
    assert main(["decompress", str(tmp_path / "c.lbpg"), "--preview", "--quiet"]) == 0
    assert _metadata_chunks(tmp_path / "c.preview.png") == _metadata_chunks(src)
