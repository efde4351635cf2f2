"""Kronos inference speed: ``analysts.kronos`` (KV cache, per-series prefill) vs the reference.

CPU, 2 threads, Kronos-small shapes with random weights (Tokenizer-base shapes for the
tokenizer), context 400, horizon 20, 1 and 8 sample paths.  With ``KRONOS_REF`` pointing
at a folder holding the reference's ``model/`` package the reference is timed too (same
weights) and greedy forecasts (``top_k=1``) are checked for identity first::

    KRONOS_REF=/tmp/kronos_ref python benchmarks/bench_kronos.py [--repeats 3] [--json out.json]

The target is ours >= 5x faster than the reference for 8 paths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.kronos_parity import BASE_TOK, SMALL_MODEL, load_reference, ohlcv_frame  # noqa: E402

CONTEXT, HORIZON, THREADS = 400, 20, 2


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from analysts.kronos import Kronos, KronosPredictor, KronosTokenizer

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    ref_classes, reason = load_reference()
    if ref_classes is not None:
        ref_tok, ref_model = ref_classes[0](**BASE_TOK).eval(), ref_classes[1](**SMALL_MODEL).eval()
        tok, model = KronosTokenizer(**BASE_TOK).eval(), Kronos(**SMALL_MODEL).eval()
        tok.load_state_dict(ref_tok.state_dict())
        model.load_state_dict(ref_model.state_dict())
    else:
        print(f"reference not timed: {reason}")
        tok, model = KronosTokenizer(**BASE_TOK).eval(), Kronos(**SMALL_MODEL).eval()

    df, ts = ohlcv_frame(CONTEXT + HORIZON, 1)
    ctx, x_ts, y_ts = df.iloc[:CONTEXT], ts.iloc[:CONTEXT], ts.iloc[CONTEXT:]
    ours = KronosPredictor(model, tok, device="cpu", max_context=512)
    sampling = dict(T=1.0, top_k=0, top_p=0.9)
    result: dict = {"context": CONTEXT, "horizon": HORIZON, "threads": THREADS,
                    "model": "Kronos-small shapes, random weights", "seconds": {}}

    if ref_classes is not None:
        ref = ref_classes[2](ref_model, ref_tok, device="cpu", max_context=512)
        with torch.no_grad():
            for paths in (1, 8):
                rp = ref.predict(ctx, x_ts, y_ts, HORIZON, T=1.0, top_k=1, top_p=1.0,
                                 sample_count=paths, verbose=False)
                op = ours.predict(ctx, x_ts, y_ts, HORIZON, T=1.0, top_k=1, top_p=1.0,
                                  sample_count=paths)
                same = bool(np.array_equal(rp.to_numpy(), op.to_numpy()))
                result[f"greedy identical ({paths} paths)"] = same
                print(f"greedy forecast identical to the reference, {paths} path(s): {same}")

    for paths in (1, 8):
        secs = _best(lambda p=paths: ours.predict(ctx, x_ts, y_ts, HORIZON, sample_count=p,
                                                  seed=0, **sampling), args.repeats)
        result["seconds"][f"ours, {paths} paths"] = secs
        if ref_classes is not None:
            def run_ref(p=paths):
                with torch.no_grad():
                    ref.predict(ctx, x_ts, y_ts, HORIZON, sample_count=p, verbose=False, **sampling)

            rsecs = _best(run_ref, max(1, args.repeats - 1))
            result["seconds"][f"reference, {paths} paths"] = rsecs
            result[f"speedup, {paths} paths"] = rsecs / secs
            print(f"{paths} path(s): ours {secs:.3f} s, reference {rsecs:.3f} s, "
                  f"speedup {rsecs / secs:.1f}x")
        else:
            print(f"{paths} path(s): ours {secs:.3f} s")
    if "speedup, 8 paths" in result:
        result["target (>= 5x for 8 paths) met"] = result["speedup, 8 paths"] >= 5
    result["machine"] = {"cpu_count": os.cpu_count(), "torch": torch.__version__}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    ok = all(v for k, v in result.items() if k.startswith("greedy identical"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
