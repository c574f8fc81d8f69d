"""The benchmark: verified rows, cache reuse, skipped codecs, failures reported, file schemas."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from lossless_bpg.bench import codecs as bench_codecs
from lossless_bpg.bench.codecs import BenchCodec
from lossless_bpg.bench.runner import CSV_FIELDS
from lossless_bpg.cli import main


@pytest.fixture
def images(tmp_path, rng):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(2):
        base = np.linspace(0, 255, 40)[None, :, None] * np.ones((24, 1, 3))
        img = np.clip(base + rng.normal(0, 4, (24, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"im{i}.png")
    return folder


def _bench(images, out, codecs, *extra):
    return main(["bench", str(images), "--out", str(out), "--codecs", codecs, "--no-plots", *extra])


def test_rows_are_verified_and_files_follow_the_schema(images, tmp_path):
    out = tmp_path / "res"
    assert _bench(images, out, "png,webp,jpegls") == 0
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
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
    assert _bench(images, tmp_path / "res", "png,flif") == 0
    out = capsys.readouterr().out
    assert "skipping flif: flif not on PATH" in out
    assert "| flif | skipped" in (tmp_path / "res" / "summary.md").read_text()


def test_a_lossy_round_trip_is_reported_as_a_failure(images, tmp_path, capsys, monkeypatch):
    broken = BenchCodec("broken", "drops the low bit", lambda im: (im & 0xFE).tobytes() + bytes(im.shape[:2]),
                        lambda b: np.frombuffer(b[:-2], np.uint8).reshape(b[-2], b[-1], 3),
                        lambda: "test")
    monkeypatch.setitem(bench_codecs.CODECS, "broken", broken)
    assert _bench(images, tmp_path / "res", "png,broken") == 1
    assert "FAILED: broken" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "res" / "results.csv")))
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
    rows = list(csv.DictReader(open(out / "results.csv")))
    ours = [r for r in rows if r["codec"] == "lbpg"][0]
    assert int(ours["lossy_bytes"]) + int(ours["residual_bytes"]) < int(ours["bytes"])
    for name in ("bpsp_per_image.png", "rate_split.png", "bpsp_vs_time.png"):
        assert (out / name).stat().st_size > 1000


def test_parallel_workers_give_the_same_sizes(images, tmp_path):
    codecs = "lbpg,png,jpegls"  # lbpg: torch in worker processes must not deadlock
    assert _bench(images, tmp_path / "one", codecs, "--no-cache") == 0
    assert _bench(images, tmp_path / "two", codecs, "--no-cache", "--workers", "2") == 0
    sizes = [
        {(r["image"], r["codec"]): r["bytes"] for r in csv.DictReader(open(tmp_path / d / "results.csv"))}
        for d in ("one", "two")
    ]
    assert sizes[0] == sizes[1] and len(sizes[0]) == 6
