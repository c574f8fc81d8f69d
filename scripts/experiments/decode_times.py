"""Decode time per file, in one process on one thread, of folders of .lbpg files (first file
decoded once before timing); folders may repeat to see the drift:

    python scripts/experiments/decode_times.py OUT_none OUT_auto OUT_none
"""
import sys, time, statistics as st, glob, torch
torch.set_num_threads(1)
from lossless_bpg.codec import decompress
from lossless_bpg.residual import load_model
m = load_model()
decompress(open(sorted(glob.glob(sys.argv[1] + "/*.lbpg"))[0], "rb").read(), m)  # warm
for d in sys.argv[1:]:
    ts = []
    for p in sorted(glob.glob(d + "/*.lbpg")):
        data = open(p, "rb").read()
        t = time.perf_counter(); decompress(data, m); ts.append(time.perf_counter() - t)
    print(d, "median %.2f s, mean %.2f s, max %.2f s" % (st.median(ts), st.mean(ts), max(ts)), flush=True)
