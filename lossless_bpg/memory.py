"""Memory: what coding an image needs, what the machine has, and refusing up front what
cannot fit (running out midway would end in a crash instead of a message)."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from .container import AnyHeader, Header
from .errors import ImageTooLargeError

#: Peak memory of a whole command (RSS), an upper bound of every peak measured on this
#: project's machine: 450 MiB plus this many bytes per pixel. Compress (default effort; B/px
#: over the base): 1 Mpx 444, 4 Mpx 400, 12 Mpx 446, 24 Mpx 463 (10.8 GB, issue 15's run;
#: measured before one malloc arena; with it: 4 Mpx 1.69 GB, 6000x4000 5.49 GB = 214 B/px).
#: Decompress: 1 Mpx 276, 4 Mpx 236.
ENCODE_BYTES_PER_PIXEL = 500
DECODE_BYTES_PER_PIXEL = 320
BASE_BYTES = 450 << 20
#: What a tiled image keeps whole besides the tiles in flight, per pixel of the image: to
#: compress, the coded tiles (at most about 3 bytes per pixel, for noise); to decompress, the
#: parsed tiles' bytes and one band of rows (or the whole output, 3 bytes, when it is returned).
TILED_ENCODE_BYTES_PER_PIXEL = 3
TILED_DECODE_BYTES_PER_PIXEL = 6
#: What the encoder's fine-tuning fit adds when it runs beside the coding of the image instead
#: of after it (measured on a 1 Mpx image: +250 MiB at the peak), and what it leaves spare.
FIT_BESIDE_BYTES_PER_PIXEL = 300
SPARE_BYTES = 256 << 20


def _available_memory() -> int | None:
    """Memory this process can still take: the kernel's MemAvailable (free plus reclaimable
    cache), less still under a container's cgroup limit; the physical memory where neither is
    readable; None where nothing is (then nothing is refused)."""
    limits = []
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) << 10)
    except (OSError, ValueError, IndexError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            limits.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not limits:
        try:
            limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return min(limits)


def release_freed_memory() -> None:
    """Give memory freed by the last phase back to the system (glibc keeps freed tensors'
    memory in fragments the next phase's differently sized ones do not fit, and the peak then
    adds up over phases: +470 MB on a 2048x2048 image). A no-op where there is no glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def use_one_malloc_arena() -> None:
    """Have every thread allocate from glibc's main arena. By default each thread that
    allocates gets an arena of its own, and freed tensor memory then sits in several arenas at
    once: a 2048x2048 compress (command-line worker thread plus torch's) peaked at 1.95 GB
    with the default and 1.67 GB with one arena, in the same time. For a process that codes
    images (the command line), not for a library's host; a no-op without glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, 1)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def can_spare(pixels: int, bytes_per_pixel: int) -> bool:
    """Whether ``pixels`` more at ``bytes_per_pixel`` fit in the memory available now, with
    SPARE_BYTES to spare (True where nothing is known of it)."""
    available = _available_memory()
    return available is None or pixels * bytes_per_pixel + SPARE_BYTES < available


def check_memory(
    pixels: int, bytes_per_pixel: int, what: str, image_bytes: int = 0, size: tuple[int, int] | None = None
) -> None:
    """Refuse, before any work, an image whose coding would need more memory than is
    available (running out midway would end in a crash instead of a message): ``pixels`` coded
    at once (the whole image, or the tiles in flight) at ``bytes_per_pixel``, plus
    ``image_bytes`` for what a tiled image keeps whole (its pixels and coded bytes)."""
    available = _available_memory()
    needed = BASE_BYTES + bytes_per_pixel * pixels + image_bytes
    if available is not None and needed > available:
        what_size = f"a {size[1]}x{size[0]} image" if size else f"a {pixels}-pixel image"
        raise ImageTooLargeError(
            f"{what_size} needs about {needed / 2**30:.1f} GB of memory to {what}; this machine has "
            f"{available / 2**30:.1f} GB available (a smaller --tile-size or fewer tile workers need less)"
        )


def check_decode_memory(header: AnyHeader, workers: int = 1) -> None:
    """Refuse a file whose decoding would need more memory than is available (see
    check_memory), from its header alone."""
    size = (header.height, header.width)
    if isinstance(header, Header):
        check_memory(header.height * header.width, DECODE_BYTES_PER_PIXEL, "decompress", 0, size)
        return
    largest = max(t.height * t.width for t in header.tiles)
    check_memory(largest * workers, DECODE_BYTES_PER_PIXEL, "decompress",
                 header.height * header.width * TILED_DECODE_BYTES_PER_PIXEL, size)
