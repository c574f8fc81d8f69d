"""Writing outputs: atomic, never over an existing file without force, never over an input,
and removable mid-write when the run is interrupted. Reading inputs: regular files only, so
that a pipe or a device is an error and never a wait."""

import os
from pathlib import Path

import pytest

from lossless_bpg.errors import InputError, OutputExistsError
from lossless_bpg.fileio import (
    check_input,
    outputs_that_are_inputs,
    read_input,
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


def test_inputs_are_read_only_from_regular_files(tmp_path):
    data = tmp_path / "x.lbpg"
    data.write_bytes(b"LBPG" + bytes(range(256)))
    assert read_input(data) == b"LBPG" + bytes(range(256))
    with pytest.raises(InputError, match="no such file"):
        read_input(tmp_path / "missing.lbpg")
    with pytest.raises(InputError, match="is a folder"):
        read_input(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_a_named_pipe_is_refused_at_once_not_waited_on(tmp_path):
    pipe = tmp_path / "photo.lbpg"
    os.mkfifo(pipe)  # no writer: a plain read would block forever
    with pytest.raises(InputError, match="named pipe"):
        read_input(pipe)
    with pytest.raises(InputError, match="named pipe"):
        check_input(pipe)


def test_a_device_is_refused(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    with pytest.raises(InputError, match="device"):
        read_input(Path("/dev/zero"))  # would never end


def test_a_head_check_runs_before_the_file_is_read_whole(tmp_path):
    import tracemalloc

    from lossless_bpg.container import HEAD_BYTES, check_head
    from lossless_bpg.errors import FormatError

    big = tmp_path / "holiday.lbpg"
    with open(big, "wb") as fh:  # a PNG renamed, 256 MiB (sparse: no disk used)
        fh.write(b"\x89PNG\r\n\x1a\n" + bytes(8))
        fh.truncate(256 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="not an lbpg file"):
            read_input(big, check_head, HEAD_BYTES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak} bytes allocated: the file was read whole"
    seen = []
    small = tmp_path / "small.bin"
    small.write_bytes(b"0123456789")
    assert read_input(small, seen.append, 4) == b"0123456789" and seen == [b"0123"]
