"""The benchmark: verified rows, cache reuse, skipped codecs, failures reported, file schemas."""

import csv
import json

import numpy as np
import pytest

from lossless_bpg import third_party
from lossless_bpg.bench import codecs as bench_codecs
from lossless_bpg.bench.codecs import BenchCodec
from lossless_bpg.bench.runner import CSV_FIELDS
from lossless_bpg.cli import main


def _rows(out):
    with open(out / "results.csv") as fh:
        return list(csv.DictReader(fh))


def _bench(images, out, codecs, *extra):
    return main(["bench", str(images), "--out", str(out), "--codecs", codecs, "--no-plots", *extra])


def test_rows_are_verified_and_files_follow_the_schema(images, tmp_path):
    out = tmp_path / "res"
    assert _bench(images, out, "png,webp,jpegls") == 0
    rows = _rows(out)
    assert list(rows[0]) == CSV_FIELDS
    assert len(rows) == 6 and all(r["exact"] == "True" for r in rows)
    assert all(float(r["bpsp"]) == pytest.approx(8 * int(r["bytes"]) / (24 * 40 * 3)) for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["codecs"][0]
    for key in ("codec", "settings", "version", "images", "failures", "mean_bpsp", "total_bpsp",
                "median_encode_s", "median_decode_s", "max_peak_mb"):
        assert key in entry
    assert "| codec |" in (out / "summary.md").read_text()


def test_second_run_reuses_the_cache(images, tmp_path, capsys):
    out = tmp_path / "res"
    assert _bench(images, out, "png") == 0
    capsys.readouterr()
    assert _bench(images, out, "png") == 0
    assert "2 cached, 0 to run" in capsys.readouterr().out


def test_unavailable_codec_is_skipped_with_a_note(images, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no flif / bpgenc / optipng here
    monkeypatch.setattr(third_party, "CHECKOUT_PREFIX", tmp_path / "no-prefix")
    monkeypatch.setenv("LBPG_THIRD_PARTY_CACHE", str(tmp_path / "no-cache"))
    assert _bench(images, tmp_path / "res", "png,flif,bpg-lossless,optipng") == 0
    out = capsys.readouterr().out
    assert "skipping flif: flif not found in third_party/local/bin, the build cache or PATH; build it " \
           "with `make third-party` (third_party/flif/build.sh)" in out
    assert "skipping bpg-lossless: bpgenc, bpgdec not found" in out
    assert "skipping optipng: optipng not on PATH" in out
    assert "| flif | skipped" in (tmp_path / "res" / "summary.md").read_text()


def test_new_baselines_are_registered():
    assert {"flif-e100", "flif", "bpg-lossless", "jpegxl-e10"} <= set(bench_codecs.CODECS)
    assert {"flif-e100", "flif", "bpg-lossless", "jpegxl-e10"} <= set(bench_codecs.DEFAULT_CODECS)
    assert "-E100" in bench_codecs.CODECS["flif-e100"].settings
    assert "-E100" not in bench_codecs.CODECS["flif"].settings


@pytest.mark.parametrize("codec", ["flif-e100", "flif", "bpg-lossless"])
def test_real_third_party_codecs_round_trip(images, tmp_path, codec):
    tools = {"flif-e100": ["flif"], "flif": ["flif"], "bpg-lossless": ["bpgenc", "bpgdec"]}[codec]
    if missing := third_party.missing_programs(*tools):
        pytest.skip(f"real {codec} absent ({third_party.how_to_build(missing)})")
    assert _bench(images, tmp_path / "res", codec) == 0
    rows = _rows(tmp_path / "res")
    assert len(rows) == 2 and all(r["exact"] == "True" and int(r["bytes"]) > 0 for r in rows)
    version = json.loads((tmp_path / "res" / "summary.json").read_text())["codecs"][0]["version"]
    assert ("FLIF (Free Lossless Image Format) 0.4" if "flif" in codec else "0.9.8") in version


def test_programs_are_found_in_the_checkout_then_the_cache_then_path(tmp_path, monkeypatch):
    def fake(folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "flif").write_text("#!/bin/sh\n")
        (folder / "flif").chmod(0o755)
        return str(folder / "flif")

    monkeypatch.delenv("LBPG_THIRD_PARTY_BIN", raising=False)
    monkeypatch.setattr(third_party, "CHECKOUT_PREFIX", tmp_path / "prefix")
    monkeypatch.setenv("LBPG_THIRD_PARTY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    assert third_party.find_program("flif") is None
    on_path = fake(tmp_path / "path")
    assert third_party.find_program("flif") == on_path
    cached = fake(tmp_path / "cache" / third_party.PINS["flif"][1] / "bin")
    fake(tmp_path / "cache" / ("0" * 64) / "bin")  # another source's build: never used
    assert third_party.find_program("flif") == cached
    in_checkout = fake(tmp_path / "prefix" / "bin")
    assert third_party.find_program("flif") == in_checkout
    chosen = fake(tmp_path / "chosen")
    monkeypatch.setenv("LBPG_THIRD_PARTY_BIN", str(tmp_path / "chosen"))
    assert third_party.find_program("flif") == chosen
    assert bench_codecs._tool("flif") == chosen


def test_a_lossy_round_trip_is_reported_as_a_failure(images, tmp_path, capsys, monkeypatch):
    broken = BenchCodec("broken", "drops the low bit", lambda im: (im & 0xFE).tobytes() + bytes(im.shape[:2]),
                        lambda b: np.frombuffer(b[:-2], np.uint8).reshape(b[-2], b[-1], 3),
                        lambda: "test")
    monkeypatch.setitem(bench_codecs.CODECS, "broken", broken)
    assert _bench(images, tmp_path / "res", "png,broken") == 1
    assert "FAILED: broken" in capsys.readouterr().out
    rows = _rows(tmp_path / "res")
    assert {r["exact"] for r in rows if r["codec"] == "broken"} == {"False"}


def test_a_crashing_codec_is_reported_as_a_failure(images, tmp_path, capsys, monkeypatch):
    def explode(_):
        raise RuntimeError("boom")

    monkeypatch.setitem(bench_codecs.CODECS, "crash", BenchCodec("crash", "-", explode, explode, lambda: "t"))
    assert _bench(images, tmp_path / "res", "crash") == 1
    assert "RuntimeError: boom" in capsys.readouterr().out


def test_this_codec_and_plots(images, tmp_path):
    out = tmp_path / "res"
    assert main(["bench", str(images), "--out", str(out), "--codecs", "lbpg,png", "--limit", "1"]) == 0
    ours = next(r for r in _rows(out) if r["codec"] == "lbpg")
    # The split is the encoder's own count: every residual stream, escapes included.
    assert int(ours["lossy_bytes"]) + int(ours["residual_bytes"]) + int(ours["header_bytes"]) == int(ours["bytes"])
    for name in ("bpsp_per_image.png", "rate_split.png", "bpsp_vs_time.png"):
        assert (out / name).stat().st_size > 1000


def test_parallel_workers_give_the_same_sizes(images, tmp_path):
    codecs = "lbpg,png,jpegls"  # lbpg: torch in worker processes must not deadlock
    assert _bench(images, tmp_path / "one", codecs, "--no-cache") == 0
    assert _bench(images, tmp_path / "two", codecs, "--no-cache", "--workers", "2") == 0
    sizes = [
        {(r["image"], r["codec"]): r["bytes"] for r in _rows(tmp_path / d)}
        for d in ("one", "two")
    ]
    assert sizes[0] == sizes[1] and len(sizes[0]) == 6


def test_lbpg_rows_take_the_split_from_the_encoder_escapes_included(rng, monkeypatch):
    import functools

    from lossless_bpg import codec
    from lossless_bpg.container import unpack

    monkeypatch.setattr(codec, "compress", functools.partial(codec.compress, quality=30))  # no Q search
    img = np.clip(rng.normal(128, 60, (24, 32, 3)), 0, 255).astype(np.uint8)  # noisy: escapes
    encoded = bench_codecs._lbpg_encode("hevc", "fast", 2)(img)
    f = unpack(encoded.data)
    escapes = sum(map(len, f.escape_streams))
    assert escapes > 0
    assert encoded.details["residual_bytes"] == sum(map(len, f.residual_streams)) + escapes
    assert encoded.details["lossy_bytes"] == len(f.lossy) and encoded.details["q"] == f.header.q


def test_measure_copies_the_encoders_details_into_the_row(images, monkeypatch):
    from lossless_bpg.bench.measure import measure

    codec = BenchCodec("split", "-", lambda im: bench_codecs.Encoded(im.tobytes(), {"q": 7, "lossy_bytes": 1}),
                       lambda b: np.frombuffer(b, np.uint8).reshape(24, 40, 3), lambda: "t")
    monkeypatch.setitem(bench_codecs.CODECS, "split", codec)
    row = measure(str(images / "im0.png"), "split")
    assert row["exact"] and row["bytes"] == 24 * 40 * 3 and row["q"] == 7 and row["lossy_bytes"] == 1
