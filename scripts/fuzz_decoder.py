"""Long fuzz run of the container parser and the decoder (the short run is tests/test_fuzz.py).

    .venv/bin/python scripts/fuzz_decoder.py --count 100000 --decode-count 300 --seed 1

``--count`` damaged files go through ``container.unpack`` (fast); ``--decode-count`` more, most
with field damage behind valid lengths and CRCs (so they reach the lossy and arithmetic
decoders), through the whole ``lossless_bpg.decompress`` (mostly of the 16x16 seed files, one
in five of the 40x56 version-2 file). The mutations and the oracle are those of
tests/fuzzing.py: every input must end in a LosslessBpgError or the exact original pixels. An
input that takes longer than ``--timeout`` seconds is reported as a hang (with the stack) and
ends the run. Failing inputs are written to ``--failures``; the summary (counts per outcome,
peak memory) is printed as JSON. Exit status 1 if any input failed.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import json
import random
import re
import resource
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fuzzing import (
    RandomSource,
    check_decode,
    check_unpack,
    mutate,
    mutate_fields,
    samples,
)

_NUMBERS = re.compile(r"[0-9a-f]{6,}|-?\d+")


def _kind(exc_name: str, message: str) -> str:
    """An outcome's name: the error class and its message without numbers."""
    return f"{exc_name}: {_NUMBERS.sub('N', message)[:90]}"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000, help="inputs for container.unpack")
    ap.add_argument("--decode-count", type=int, default=300, help="inputs for the full decoder")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds one input may take")
    ap.add_argument("--slow", type=float, default=10.0, help="keep inputs slower than this (s)")
    ap.add_argument("--failures", default="out/fuzz_failures", help="folder for failing inputs")
    args = ap.parse_args(argv)

    import lossless_bpg
    from lossless_bpg.errors import LosslessBpgError

    rng = random.Random(args.seed)
    src = RandomSource(rng)
    files = samples()
    print(f"seeds: {', '.join(f'{s.name} ({len(s.data)} B)' for s in files)}", file=sys.stderr)
    failures: list[dict] = []
    fail_dir = Path(args.failures)

    def fail(stage: str, i: int, data: bytes, exc: BaseException) -> None:
        fail_dir.mkdir(parents=True, exist_ok=True)
        path = fail_dir / f"{stage}-{args.seed}-{i}.lbpg"
        path.write_bytes(data)
        failures.append({"stage": stage, "input": str(path), "error": "".join(
            traceback.format_exception_only(type(exc), exc)).strip()})
        print(f"FAIL {stage} #{i}: {failures[-1]['error']} -> {path}", file=sys.stderr)

    summary: dict = {"seed": args.seed, "seeds": [s.name for s in files]}
    faulthandler.enable()

    # 1. the parser
    outcomes: collections.Counter[str] = collections.Counter()
    start, peak0 = time.monotonic(), _peak_mb()
    for i in range(args.count):
        sample = files[rng.randrange(len(files))]
        data = mutate(sample.data, sample.parts, src)
        faulthandler.dump_traceback_later(args.timeout, exit=True)
        try:
            f = check_unpack(data)
            outcomes["parsed" if f is not None else "FormatError"] += 1
        except LosslessBpgError as exc:  # a LosslessBpgError that is not a FormatError
            outcomes[type(exc).__name__] += 1
        except Exception as exc:  # noqa: BLE001 - any other exception is what we look for
            fail("unpack", i, data, exc)
        finally:
            faulthandler.cancel_dump_traceback_later()
        if (i + 1) % 20000 == 0:
            print(f"unpack: {i + 1}/{args.count} ({time.monotonic() - start:.0f} s)", file=sys.stderr)
    summary["unpack"] = {"inputs": args.count, "outcomes": dict(outcomes),
                         "seconds": round(time.monotonic() - start, 1),
                         "peak_rss_growth_mb": round(_peak_mb() - peak0, 1)}

    # 2. the whole decoder, on damage that passes the container's checks
    outcomes = collections.Counter()
    start, peak0 = time.monotonic(), _peak_mb()
    slowest, slow = 0.0, []
    small = [s for s in files if s.pixels.shape[0] == 16]  # 16x16, and the 16x300 tiled file
    for i in range(args.decode_count):
        # mostly the 16x16 files (fast decodes); the larger version-2 file one time in five
        sample = small[rng.randrange(len(small))] if rng.random() < 0.8 or len(files) == len(small) else files[-1]
        r = rng.random()
        if r < 0.7:
            data = mutate_fields(sample.parts, src, deep=True).to_bytes()
        elif r < 0.9:
            data = mutate_fields(sample.parts, src).to_bytes()
        else:
            data = mutate(sample.data, sample.parts, src)
        faulthandler.dump_traceback_later(args.timeout, exit=True)
        t0 = time.monotonic()
        try:
            error = check_decode(data, sample.pixels, lossless_bpg.decompress)
            outcomes["exact" if error is None else _kind(type(error).__name__, str(error))] += 1
        except Exception as exc:  # noqa: BLE001
            fail("decode", i, data, exc)
        finally:
            faulthandler.cancel_dump_traceback_later()
        took = time.monotonic() - t0
        if took > args.slow:
            fail_dir.mkdir(parents=True, exist_ok=True)
            path = fail_dir / f"slow-{args.seed}-{i}.lbpg"
            path.write_bytes(data)
            slow.append({"input": str(path), "seconds": round(took, 1), "sample": sample.name})
        slowest = max(slowest, took)
        if (i + 1) % 50 == 0:
            print(f"decode: {i + 1}/{args.decode_count} ({time.monotonic() - start:.0f} s)", file=sys.stderr)
    summary["decode"] = {"inputs": args.decode_count, "outcomes": dict(outcomes.most_common()),
                         "seconds": round(time.monotonic() - start, 1), "slowest_input_s": round(slowest, 2), "slow": slow,
                         "peak_rss_growth_mb": round(_peak_mb() - peak0, 1)}
    summary["peak_rss_mb"] = round(_peak_mb(), 1)
    summary["failures"] = failures
    print(json.dumps(summary, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
