"""Writing outputs: atomic, never over an existing file without force, never over an input,
and removable mid-write when the run is interrupted."""

import os

import pytest

from lossless_bpg.errors import OutputExistsError
from lossless_bpg.fileio import (
    outputs_that_are_inputs,
    remove_pending_temporaries,
    write_atomic,
)


def test_an_interrupted_write_leaves_neither_output_nor_temporary(tmp_path):
    target = tmp_path / "out.bin"

    def writer(tmp):
        tmp.write_bytes(b"half")
        remove_pending_temporaries()  # what the command line does on Ctrl-C
        assert not tmp.exists()

    with pytest.raises(OSError):
        write_atomic(target, writer)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_without_force(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        write_atomic(target, lambda tmp: tmp.write_bytes(b"new"))
    assert target.read_bytes() == b"keep"
    write_atomic(target, lambda tmp: tmp.write_bytes(b"new"), force=True)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_outputs_that_resolve_to_inputs_are_found(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(b"x")
    os.link(src, tmp_path / "hard.png")
    os.symlink(src, tmp_path / "soft.png")
    (tmp_path / "other.png").write_bytes(b"x")
    outs = [src, tmp_path / "hard.png", tmp_path / "soft.png", tmp_path / "other.png", tmp_path / "new.png"]
    assert outputs_that_are_inputs([src], outs) == outs[:3]
