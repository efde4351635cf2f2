"""Numerical parity of ``analysts.toto`` with Datadog's reference implementation (toto-ts).

    /tmp/venv_toto/bin/python benchmarks/toto_parity.py            # tiny config
    /tmp/venv_toto/bin/python benchmarks/toto_parity.py --base     # + the published base config

Needs the reference importable as ``toto`` (``pip install --no-deps toto-ts`` plus
rotary-embedding-torch, gluonts, einops, jaxtyping, beartype in a throwaway venv); skips
with a message otherwise. A reference model is randomly initialised, its state dict and
config are written as a checkpoint folder (the reference's own unfused SwiGLU names), our
``Toto.from_pretrained`` loads it, and the script reports the max abs difference of

* one forward pass: loc/scale of the scaler and every mixture parameter;
* the mean forecast (``num_samples=None``) with and without the KV cache;
* the mean of many sample paths (a statistical check, not a bit-level one).

The reference's cached decoding re-centres xPos on each call (see ``analysts.toto._model``);
ours keeps one centre, so it is compared with the reference's uncached path, and with
``reference_cache_xpos=True`` against the reference's cached path.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOL = 1e-5


def _import_reference():
    warnings.filterwarnings("ignore")
    try:
        import torch  # noqa: F401
        from toto.data.util.dataset import MaskedTimeseries
        from toto.inference.forecaster import TotoForecaster
        from toto.model.backbone import TotoBackbone
    except Exception as exc:  # ImportError, or a missing transitive dependency
        return None, f"{type(exc).__name__}: {exc}"
    return (TotoBackbone, TotoForecaster, MaskedTimeseries), None


def _reference_checkpoint(ref_backbone, config: dict, folder: Path) -> None:
    import torch
    from safetensors.torch import save_file

    state = {f"model.{k}": v.detach().contiguous() for k, v in ref_backbone.state_dict().items()}
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config, indent=2))


def _masked(ref_masked_cls, series, padding=None):
    import torch

    v, t = series.shape
    return ref_masked_cls(
        series=series,
        padding_mask=torch.ones_like(series, dtype=torch.bool) if padding is None else padding,
        id_mask=torch.zeros((v, t), dtype=torch.int),
        timestamp_seconds=torch.zeros((v, t), dtype=torch.int),
        time_interval_seconds=torch.full((v,), 60, dtype=torch.int),
    )


def run_case(name: str, config_dict: dict, context_len: int, variates: int, horizon: int,
             n_samples: int, ref) -> dict:
    import torch

    from analysts.toto import Toto

    TotoBackbone, TotoForecaster, MaskedTimeseries = ref
    torch.manual_seed(0)
    ref_kwargs = dict(config_dict, use_memory_efficient_attention=False)
    backbone = TotoBackbone(**ref_kwargs).eval()
    results: dict = {"case": name}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _reference_checkpoint(backbone, config_dict, folder)
        ours = Toto.from_pretrained(folder, device="cpu")

    p = config_dict["patch_size"]
    rng = np.random.default_rng(1)
    raw = rng.standard_normal((variates, context_len)).cumsum(-1) * 3 + 50
    raw += np.sin(np.arange(context_len) / 7.0) * 5
    series = torch.tensor(raw, dtype=torch.float32)

    # 1. one forward pass on whole patches (last patches only; a left-padded prefix)
    t_full = (context_len // p) * p
    x = series[None, :, -t_full:].clone()
    pad = torch.ones_like(x, dtype=torch.bool)
    pad[..., : p // 2] = False  # a little masked padding, as the reference's left-padding
    x[..., : p // 2] = 0.0
    ids = torch.zeros_like(x, dtype=torch.int)
    with torch.no_grad():
        r = backbone(x, pad, ids)
        o = ours.model(x, pad, ids)
    comp = r.distribution.component_distribution
    pairs = {
        "loc": (r.loc, o.loc),
        "scale": (r.scale, o.scale),
        "df": (comp.df, o.params.df),
        "mix_loc": (comp.loc, o.params.loc),
        "mix_scale": (comp.scale, o.params.scale),
        "weights": (r.distribution.mixture_distribution.probs, o.params.weights),
        "scaled_mean": (r.distribution.mean, o.params.mean()),
    }
    results["forward_max_abs_diff"] = {
        k: (a - b).abs().max().item() for k, (a, b) in pairs.items()
    }
    # relative to the quantity's magnitude (>= 1): float32 rounding is ~6e-8 of it
    results["forward_rel_diff"] = {
        k: (a - b).abs().max().item() / max(1.0, a.abs().max().item())
        for k, (a, b) in pairs.items()
    }

    # 2. mean forecasts (context not a multiple of the patch: exercises left padding)
    forecaster = TotoForecaster(backbone)
    ctx = series[:, -context_len:]
    with torch.no_grad():
        ref_nc = forecaster.forecast(_masked(MaskedTimeseries, ctx), horizon, None,
                                     use_kv_cache=False).mean[0].numpy()
        ref_kv = forecaster.forecast(_masked(MaskedTimeseries, ctx), horizon, None,
                                     use_kv_cache=True).mean[0].numpy()
    ours_kv = ours.forecast(ctx.numpy(), horizon, use_kv_cache=True).mean
    ours_nc = ours.forecast(ctx.numpy(), horizon, use_kv_cache=False).mean
    ours.model.reference_cache_xpos = True
    ours_kv_ref = ours.forecast(ctx.numpy(), horizon, use_kv_cache=True).mean
    ours.model.reference_cache_xpos = False
    scale = max(1.0, float(np.abs(ref_nc).max()))
    results["mean_forecast_max_abs_diff"] = {
        "ours_nocache_vs_ref_nocache": float(np.abs(ours_nc - ref_nc).max()),
        "ours_cache_vs_ref_nocache": float(np.abs(ours_kv - ref_nc).max()),
        "ours_cache(reference_cache_xpos)_vs_ref_cache": float(np.abs(ours_kv_ref - ref_kv).max()),
        "ref_cache_vs_ref_nocache(reference quirk)": float(np.abs(ref_kv - ref_nc).max()),
        "ours_cache_vs_ours_nocache": float(np.abs(ours_kv - ours_nc).max()),
        "forecast_magnitude": scale,
    }
    m = results["mean_forecast_max_abs_diff"]
    results["mean_forecast_rel_diff"] = {
        k: m[k] / scale
        for k in ("ours_nocache_vs_ref_nocache", "ours_cache_vs_ref_nocache",
                  "ours_cache(reference_cache_xpos)_vs_ref_cache")
    }

    # 3. sample paths: the average of many paths vs the reference's (statistical)
    if n_samples:
        torch.manual_seed(3)
        with torch.no_grad():
            ref_s = forecaster.forecast(_masked(MaskedTimeseries, ctx), horizon, n_samples,
                                        samples_per_batch=n_samples // 4,
                                        use_kv_cache=True).samples[0].numpy()
        ours_s = ours.forecast(ctx.numpy(), horizon, n_samples, n_samples // 4 + 3, seed=3).samples
        iqr = float((np.quantile(ref_s, 0.75, -1) - np.quantile(ref_s, 0.25, -1)).mean())
        results["samples"] = {"n": n_samples, "mean_iqr_ref": iqr}
        for q in (0.1, 0.5, 0.9):
            dq = np.abs(np.quantile(ref_s, q, -1) - np.quantile(ours_s, q, -1)).max()
            results["samples"][f"q{q:g}_max_abs_diff_in_iqr_units"] = float(dq / iqr)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", action="store_true", help="also run the published base config")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    ref, why = _import_reference()
    if ref is None:
        print(f"SKIP: the reference Toto (toto-ts) is not importable here ({why})")
        return 0
    import torch

    from analysts.toto import TotoConfig

    torch.set_num_threads(4)
    all_results = []
    tiny = TotoConfig.tiny().to_dict()
    all_results.append(run_case("tiny", tiny, 61, 3, 29, args.samples, ref))
    tiny_sf = TotoConfig.tiny(spacewise_first=True, num_layers=4).to_dict()
    all_results.append(run_case("tiny-4layer-spacewise-first", tiny_sf, 100, 4, 20, 0, ref))
    if args.base:
        all_results.append(run_case("base", TotoConfig.base().to_dict(), 512, 2, 100, 0, ref))
    worst = 0.0
    for res in all_results:
        print(f"== {res['case']}")
        for group in ("forward_max_abs_diff", "forward_rel_diff", "mean_forecast_max_abs_diff",
                      "mean_forecast_rel_diff", "samples"):
            if group in res:
                print(f"  {group}:")
                for k, v in res[group].items():
                    print(f"    {k:50s} {v:.3e}" if isinstance(v, float) else f"    {k:50s} {v}")
        worst = max(worst, *res["forward_rel_diff"].values(),
                    *res["mean_forecast_rel_diff"].values())
    print(f"worst relative diff (forward + mean forecasts): {worst:.3e} "
          f"({'OK' if worst <= TOL else 'ABOVE'} tolerance {TOL:g})")
    if args.json:
        args.json.write_text(json.dumps(all_results, indent=2))
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    raise SystemExit(main())
