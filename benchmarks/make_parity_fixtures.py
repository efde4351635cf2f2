"""Write the upstream-parity test fixtures with the *reference* Toto and Kronos code.

    # Toto: toto-ts from PyPI in a throw-away venv (never the project's environment)
    /tmp/toto-ref/bin/python benchmarks/make_parity_fixtures.py toto tests/analysts/toto/fixtures

    # Kronos: the reference repository's model/ package (see benchmarks/README.md)
    KRONOS_REF=/tmp/kronos_ref /tmp/kronos-ref/bin/python benchmarks/make_parity_fixtures.py \
        kronos tests/analysts/kronos/fixtures --kronos-commit <sha of the checkout>

Each run builds small randomly initialised reference models (fixed seeds), saves them as
checkpoint folders (``config.json`` + ``model.safetensors``, written by the reference's own
state dict / ``save_pretrained``), runs the reference on fixed inputs and writes the inputs
and outputs to ``expected.safetensors`` plus ``provenance.json`` (this script, the
reference's version or commit, torch/numpy/python versions, the date).  It imports nothing
from Alfred: ``tests/analysts/{toto,kronos}/test_upstream_parity.py`` load the folders
with our implementation and compare.  Only these generated files are committed; the
reference code stays in the throw-away venv / folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np

SCRIPT = "benchmarks/make_parity_fixtures.py"

# Toto: TotoConfig.tiny() key for key (the published config.json's keys), and a
# space-wise-first 4-layer variant.
TOTO_TINY = {
    "patch_size": 8, "stride": 8, "embed_dim": 32, "num_layers": 2, "num_heads": 2,
    "mlp_hidden_dim": 64, "dropout": 0.0, "spacewise_every_n_layers": 2,
    "scaler_cls": "<class 'model.scaler.CausalPatchStdMeanScaler'>",
    "output_distribution_classes": ["<class 'model.distribution.MixtureOfStudentTsOutput'>"],
    "spacewise_first": False, "output_distribution_kwargs": {"k_components": 4},
    "use_memory_efficient_attention": False, "stabilize_with_global": True,
    "scale_factor_exponent": 10.0,
}
# name: (config, context length, variates, horizon, id of each variate, weight seed)
TOTO_CASES = {
    "tiny": (TOTO_TINY, 61, 3, 29, [0, 0, 0], 0),
    "spacewise_first": (dict(TOTO_TINY, spacewise_first=True, num_layers=4), 100, 4, 20,
                        [0, 0, 1, 1], 1),
}
TOTO_SAMPLES = 2000
TOTO_QUANTILES = (0.1, 0.5, 0.9)

KRONOS_TOK = dict(d_in=6, d_model=32, n_heads=2, ff_dim=64, n_enc_layers=2, n_dec_layers=2,
                  ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0, s1_bits=4,
                  s2_bits=4, beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05, group_size=4)
KRONOS_MODEL = dict(s1_bits=4, s2_bits=4, n_layers=2, d_model=32, n_heads=2, ff_dim=64,
                    ffn_dropout_p=0.0, attn_dropout_p=0.0, resid_dropout_p=0.0,
                    token_dropout_p=0.0, learn_te=False)
# greedy forecasts: (context rows, prediction length, max_context, sample_count)
KRONOS_GREEDY = {
    "fits": (40, 12, 64, 2),
    "slides": (40, 16, 48, 2),
    "long_context": (60, 8, 48, 1),
}
KRONOS_FRAME_ROWS = 68


def _versions() -> dict:
    import pandas as pd
    import torch

    return {"torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
            "python": platform.python_version(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")}


def _save(tensors: dict, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))


# ----------------------------------------------------------------------------- Toto
def _toto_masked(masked_cls, series):
    import torch

    v, t = series.shape
    return masked_cls(series=series, padding_mask=torch.ones_like(series, dtype=torch.bool),
                      id_mask=torch.zeros((v, t), dtype=torch.int),
                      timestamp_seconds=torch.zeros((v, t), dtype=torch.int),
                      time_interval_seconds=torch.full((v,), 60, dtype=torch.int))


def _toto_case(name: str, spec: tuple, out: Path) -> dict:
    import torch
    from toto.data.util.dataset import MaskedTimeseries
    from toto.inference.forecaster import TotoForecaster
    from toto.model.backbone import TotoBackbone

    config, context_len, variates, horizon, ids, seed = spec
    torch.manual_seed(seed)
    backbone = TotoBackbone(**config).eval()
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"model.{k}": v for k, v in backbone.state_dict().items() if isinstance(v, torch.Tensor)}
    _save(state, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    rng = np.random.default_rng(100 + seed)
    raw = rng.standard_normal((variates, context_len)).cumsum(-1) * 3 + 50
    raw += np.sin(np.arange(context_len) / 7.0) * 5
    context = torch.tensor(raw, dtype=torch.float32)
    p = config["patch_size"]
    t_full = (context_len // p) * p
    x = context[None, :, -t_full:].clone()
    pad = torch.ones_like(x, dtype=torch.bool)
    pad[..., : p // 2] = False  # a masked, zeroed prefix as the reference's left padding
    x[..., : p // 2] = 0.0
    id_mask = torch.tensor(ids, dtype=torch.int)[None, :, None].expand_as(x).contiguous()
    expected = {"input.context": context, "input.forward_series": x,
                "input.forward_padding": pad, "input.forward_id_mask": id_mask}
    forecaster = TotoForecaster(backbone)
    with torch.no_grad():
        r = backbone(x, pad, id_mask)
        comp = r.distribution.component_distribution
        expected.update({
            "forward.loc": r.loc, "forward.scale": r.scale, "forward.df": comp.df,
            "forward.mix_loc": comp.loc, "forward.mix_scale": comp.scale,
            "forward.weights": r.distribution.mixture_distribution.probs,
            "forward.mean": r.distribution.mean,
        })
        for cached in (False, True):
            fc = forecaster.forecast(_toto_masked(MaskedTimeseries, context), horizon, None,
                                     use_kv_cache=cached)
            expected[f"mean_forecast.{'cache' if cached else 'nocache'}"] = fc.mean[0]
        torch.manual_seed(3)
        draws = forecaster.forecast(_toto_masked(MaskedTimeseries, context), horizon,
                                    TOTO_SAMPLES, samples_per_batch=TOTO_SAMPLES // 4,
                                    use_kv_cache=True).samples[0]
    q = torch.tensor(TOTO_QUANTILES, dtype=torch.float64)
    expected["samples.quantiles"] = torch.quantile(draws.double(), q, dim=-1)
    _save(expected, folder / "expected.safetensors")
    return {"context_len": context_len, "variates": variates, "horizon": horizon,
            "id_mask": ids, "weight_seed": seed, "padded_prefix": p // 2,
            "samples": TOTO_SAMPLES, "quantiles": list(TOTO_QUANTILES)}


def write_toto(out: Path) -> dict:
    from importlib.metadata import version

    torch = __import__("torch")
    torch.set_num_threads(2)
    cases = {name: _toto_case(name, spec, out) for name, spec in TOTO_CASES.items()}
    deps = {name: version(name) for name in ("rotary-embedding-torch", "gluonts", "einops",
                                             "jaxtyping", "safetensors")}
    return {"reference": {"package": "toto-ts", "version": version("toto-ts"),
                          "dependencies": deps},
            "cases": cases}


# ----------------------------------------------------------------------------- Kronos
def _ohlcv(n: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.003, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.003, n)))
    vol = rng.lognormal(10, 0.5, n)
    values = np.stack([open_, high, low, close, vol, vol * close], axis=1)
    ts = pd.Series(pd.date_range("2024-01-02 09:30", periods=n, freq="5min"))
    return values, ts


def _kronos_greedy(ref, tok, model, values, ts, expected: dict) -> dict:
    import pandas as pd
    import torch

    _, _, predictor_cls = ref
    cols = ["open", "high", "low", "close", "volume", "amount"]
    seen: list = []
    original = tok.decode

    def recording(x, half=False):
        seen.append((x[0].clone(), x[1].clone()))
        return original(x, half=half)

    tok.decode = recording
    try:
        for name, (ctx, pred, max_context, samples) in KRONOS_GREEDY.items():
            seen.clear()
            predictor = predictor_cls(model, tok, device="cpu", max_context=max_context)
            df = pd.DataFrame(values[:ctx], columns=cols)
            with torch.no_grad():
                out = predictor.predict(df, ts.iloc[:ctx].reset_index(drop=True),
                                        ts.iloc[ctx:ctx + pred].reset_index(drop=True), pred,
                                        T=1.0, top_k=1, top_p=1.0, sample_count=samples,
                                        verbose=False)
            (s1, s2), = seen
            expected[f"greedy.{name}.s1"] = s1
            expected[f"greedy.{name}.s2"] = s2
            expected[f"greedy.{name}.forecast"] = torch.tensor(out.to_numpy())
    finally:
        del tok.decode
    return {name: dict(zip(("context", "pred_len", "max_context", "sample_count"), spec, strict=True))
            for name, spec in KRONOS_GREEDY.items()}


def write_kronos(out: Path, commit: str) -> dict:
    import torch

    root = os.environ.get("KRONOS_REF")
    if not root or not (Path(root) / "model" / "kronos.py").is_file():
        raise SystemExit("set KRONOS_REF to a folder holding the reference's model/ package")
    sys.path.insert(0, root)
    from model import Kronos, KronosPredictor, KronosTokenizer  # the reference package

    torch.set_num_threads(2)
    torch.manual_seed(0)
    tok, model = KronosTokenizer(**KRONOS_TOK).eval(), Kronos(**KRONOS_MODEL).eval()
    tok.save_pretrained(str(out / "tokenizer"))
    model.save_pretrained(str(out / "model"))
    for sub in ("tokenizer", "model"):
        (out / sub / "README.md").unlink(missing_ok=True)  # the hub mixin's model card

    gen = torch.Generator().manual_seed(1)
    vocab1, vocab2 = 2 ** KRONOS_MODEL["s1_bits"], 2 ** KRONOS_MODEL["s2_bits"]
    x = torch.randn(2, 24, 6, generator=gen).clamp(-5, 5)
    s1_in = torch.randint(0, vocab1, (2, 24), generator=gen)
    s2_in = torch.randint(0, vocab2, (2, 24), generator=gen)
    stamp = torch.stack([torch.randint(0, n, (2, 24), generator=gen) for n in (60, 24, 7, 32, 13)],
                        -1).float()
    expected = {"input.tokenizer_x": x, "input.s1": s1_in, "input.s2": s2_in, "input.stamp": stamp}
    with torch.no_grad():
        s1, s2 = tok.encode(x, half=True)
        expected.update({"tokenizer.s1": s1, "tokenizer.s2": s2,
                         "tokenizer.decoded": tok.decode((s1, s2), half=True)})
        s1_logits, context = model.decode_s1(s1_in, s2_in, stamp)
        s1_greedy = s1_logits.argmax(-1)
        expected.update({"model.s1_logits": s1_logits, "model.s1_greedy": s1_greedy,
                         "model.s2_logits": model.decode_s2(context, s1_greedy),
                         # as in generation: one s2 query (the chosen last s1 id) at position 0
                         "model.s2_logits_next": model.decode_s2(context, s1_greedy[:, -1:])[:, -1]})
    values, ts = _ohlcv(KRONOS_FRAME_ROWS, seed=7)
    expected["input.frame"] = torch.tensor(values)
    expected["input.frame_ns"] = torch.tensor(ts.to_numpy().astype("datetime64[ns]").astype(np.int64))
    cases = _kronos_greedy((KronosTokenizer, Kronos, KronosPredictor), tok, model, values, ts,
                           expected)
    _save(expected, out / "expected.safetensors")
    from importlib.metadata import version

    deps = {name: version(name) for name in ("einops", "huggingface_hub", "safetensors")}
    return {"reference": {"repository": "github.com/shiyu-coder/Kronos", "commit": commit,
                          "dependencies": deps},
            "tokenizer_config": KRONOS_TOK, "model_config": KRONOS_MODEL,
            "greedy_cases": cases, "greedy_sampling": {"T": 1.0, "top_k": 1, "top_p": 1.0}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=("toto", "kronos"))
    ap.add_argument("out", type=Path, help="fixture folder (created; files are overwritten)")
    ap.add_argument("--kronos-commit", default="unknown",
                    help="commit of the Kronos checkout in KRONOS_REF (recorded)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    args.out.mkdir(parents=True, exist_ok=True)
    info = write_toto(args.out) if args.model == "toto" else write_kronos(args.out, args.kronos_commit)
    command = f"python {SCRIPT} {args.model} {args.out.as_posix()}"
    if args.model == "kronos":
        command = f"KRONOS_REF=<checkout> {command} --kronos-commit {args.kronos_commit}"
    provenance = {"generator": SCRIPT, "command": command,
                  **_versions(), **info}
    (args.out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
