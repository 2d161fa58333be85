#!/usr/bin/python3
"""Times fp32 matrix multiplication through numpy and/or torch and prints GFLOP/s.

Cross-checks which OpenBLAS kernel (OPENBLAS_CORETYPE) is active and what it delivers, independently of
the model benchmark. Shapes: --n N (square) or --mnk M,N,K; --bt also times the x @ W^T layout that
nn.Linear uses (B stored transposed).

  OPENBLAS_CORETYPE=SKYLAKEX /usr/bin/python3 bench/sgemm_probe.py --n 2048 --backend both
"""

import argparse
import ctypes
import json
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # same default as pytorch_reference.py (set before torch loads)


def openblas(threads=None):
    path = None
    with open("/proc/self/maps") as f:
        for line in f:
            name = line.split()[-1]
            if os.path.basename(name).startswith("libopenblas") and ".so" in name:
                path = name
                break
    if path is None:
        return {"library": None}
    lib = ctypes.CDLL(path)
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    if threads:
        lib.openblas_set_num_threads(int(threads))
    return {"library": path, "corename": lib.openblas_get_corename().decode(),
            "config": lib.openblas_get_config().decode(), "num_threads": int(lib.openblas_get_num_threads())}


def bench(fn, reps, min_time):
    fn()  # warmup
    times = []
    t_start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - t_start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--mnk", default=None, help="M,N,K: (M x K) @ (K x N)")
    ap.add_argument("--backend", choices=["numpy", "torch", "both"], default="both")
    ap.add_argument("--bt", action="store_true", help="also time A @ B^T (nn.Linear layout)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=1.0, help="keep repeating for at least this many seconds")
    ap.add_argument("--threads", type=int, default=None, help="default: all usable cores")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    m, n, k = (int(x) for x in args.mnk.split(",")) if args.mnk else (args.n,) * 3
    threads = args.threads or len(os.sched_getaffinity(0))
    flop = 2.0 * m * n * k

    import numpy as np
    results = []
    backends = ["numpy", "torch"] if args.backend == "both" else [args.backend]
    info = None
    for be in backends:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        bt = np.ascontiguousarray(b.T)
        if be == "numpy":
            variants = {"A@B": lambda: a @ b}
            if args.bt:
                variants["A@B^T"] = lambda: a @ bt.T
        else:
            import torch
            torch.set_num_threads(threads)
            ta, tb, tbt = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(bt)
            variants = {"A@B": lambda: ta @ tb}
            if args.bt:
                variants["A@B^T"] = lambda: torch.nn.functional.linear(ta, tbt)
        info = openblas(threads)
        for name, fn in variants.items():
            best, med, cnt = bench(fn, args.reps, args.min_time)
            r = {"backend": be, "op": name, "m": m, "n": n, "k": k, "best_s": best, "median_s": med, "reps": cnt,
                 "gflops_best": flop / best / 1e9, "gflops_median": flop / med / 1e9}
            results.append(r)
            print(f"{be:5s} {name:6s} {m}x{k} @ {k}x{n}: best {best * 1e3:8.2f} ms = {r['gflops_best']:7.1f} GFLOP/s"
                  f"   median {med * 1e3:8.2f} ms = {r['gflops_median']:7.1f} GFLOP/s  ({cnt} reps)")
    env = os.environ.get("OPENBLAS_CORETYPE")
    print(f"OPENBLAS_CORETYPE={env!r}  OpenBLAS core={info.get('corename')}  threads={info.get('num_threads')}  "
          f"{info.get('config')}")
    if args.json:
        print(json.dumps({"openblas_coretype_env": env, "openblas": info, "threads": threads, "results": results}))


if __name__ == "__main__":
    main()
