"""``bench --max-error``: near-lossless rows whose error is measured on the decoded images."""

import csv

from lossless_bpg.cli import main


def test_near_lossless_rows_measure_the_error_and_draw_the_plot(images, tmp_path):
    out = tmp_path / "nl"
    assert main(["bench", str(images), "--codecs", "lbpg,jpegls", "--max-error", "1,3", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "results.csv").read_text().splitlines()))
    assert {(r["codec"], r["max_error"]) for r in rows} == {("lbpg", "1"), ("lbpg", "3"), ("jpegls", "1"), ("jpegls", "3")}
    assert all(int(r["measured_max_error"]) <= int(r["max_error"]) for r in rows)
    assert (out / "summary.md").read_text().count("| lbpg |") == 2
    assert (out / "bpsp_vs_max_error.png").stat().st_size > 0


def test_bounds_out_of_range_are_a_usage_error(images, tmp_path):
    assert main(["bench", str(images), "--max-error", "0,200", "--out", str(tmp_path)]) == 2
