"""Toto forecasts per second on CPU: analysts.toto vs Datadog's reference (toto-ts).

    python benchmarks/bench_toto.py                          # ours only (system python)
    /tmp/venv_toto/bin/python benchmarks/bench_toto.py       # ours and the reference
    python benchmarks/bench_toto.py --horizon 192 --samples 64 --threads 2 --json out.json

The published base config (151M parameters) with random weights (same weights on both
sides: the reference's state dict is loaded into ours), a random-walk context of
``--context`` steps, ``--samples`` sample paths all in one batch, the KV cache on, float32,
``torch.set_num_threads(--threads)``. One warm-up call each, then the best of ``--repeats`` runs, ours and the
reference's alternating (the machine may be shared).
The reference is the one in a throwaway venv (``pip install --no-deps toto-ts`` plus its
small pure-python dependencies); without it only our side runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _best_interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each callable; runs alternate so that machine noise hits all."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: min(ts) for name, ts in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--variates", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from analysts.toto import Toto, TotoConfig

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    ref = None
    if not args.no_reference:
        try:
            from toto.data.util.dataset import MaskedTimeseries
            from toto.inference.forecaster import TotoForecaster
            from toto.model.backbone import TotoBackbone

            ref = (TotoBackbone, TotoForecaster, MaskedTimeseries)
        except Exception as exc:  # not installed, or a missing transitive dependency
            print(f"reference toto-ts not importable ({type(exc).__name__}: {exc}); ours only")

    config = TotoConfig.base()
    torch.manual_seed(0)
    ours = Toto(config, device="cpu")
    backbone = None
    if ref is not None:
        backbone = ref[0](**dict(config.to_dict(), use_memory_efficient_attention=False)).eval()
        ours.load_checkpoint_state(dict(backbone.state_dict()), source="reference")

    rng = np.random.default_rng(0)
    ctx = (rng.standard_normal((args.variates, args.context)).cumsum(-1) + 100).astype(np.float32)
    results: dict = {
        "machine": platform.platform(),
        "torch": torch.__version__,
        "threads": args.threads,
        "context": args.context,
        "horizon": args.horizon,
        "samples": args.samples,
        "variates": args.variates,
    }

    def run_ours():
        ours.forecast(ctx, args.horizon, args.samples, args.samples, seed=0)

    def run_ours_mean():
        ours.forecast(ctx, args.horizon)

    fns = {"ours_s": run_ours, "ours_mean_path_s": run_ours_mean}
    if ref is not None:
        _, forecaster_cls, masked_cls = ref
        forecaster = forecaster_cls(backbone)
        series = torch.from_numpy(ctx)
        v, t = series.shape
        inputs = masked_cls(
            series=series,
            padding_mask=torch.ones_like(series, dtype=torch.bool),
            id_mask=torch.zeros((v, t), dtype=torch.int),
            timestamp_seconds=torch.zeros((v, t), dtype=torch.int),
            time_interval_seconds=torch.full((v,), 60, dtype=torch.int),
        )

        def run_ref():
            with torch.no_grad():
                forecaster.forecast(inputs, args.horizon, args.samples,
                                    samples_per_batch=args.samples, use_kv_cache=True)

        def run_ref_mean():
            with torch.no_grad():
                forecaster.forecast(inputs, args.horizon, None, use_kv_cache=True)

        fns.update({"reference_s": run_ref, "reference_mean_path_s": run_ref_mean})
    results.update(_best_interleaved(fns, args.repeats))
    if ref is not None:
        results["speedup"] = results["reference_s"] / results["ours_s"]
        results["speedup_mean_path"] = results["reference_mean_path_s"] / results["ours_mean_path_s"]

    print(f"Toto base, CPU, {args.threads} threads, context {args.context}, horizon "
          f"{args.horizon}, {args.samples} samples, {args.variates} variate(s)")
    for side in ("ours", "reference"):
        if f"{side}_s" in results:
            s, m = results[f"{side}_s"], results[f"{side}_mean_path_s"]
            print(f"  {side:9s}  sampled: {s:7.3f} s/forecast ({1 / s:6.2f}/s)   "
                  f"mean path: {m:7.3f} s ({1 / m:6.2f}/s)")
    if "speedup" in results:
        print(f"  speed-up: sampled {results['speedup']:.1f}x, "
              f"mean path {results['speedup_mean_path']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
