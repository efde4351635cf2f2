"""The README's report screenshots: one PNG per HTML report kind, in docs/img/.

Each report is built the way a user gets it (alfred run, walkforward, stress, sweep,
train-rl) on tiny real data: four ``sp500_stocks`` names over 2018-2020, a momentum
analyst (a tiny magnitude regressor for the walk-forward), a few synthetic paths, a 2x2
sweep and a PPO agent trained for a few hundred steps. Each page is then opened in
headless Chromium by :func:`reports.check_render.check_page`, which also runs the layout
checks (nothing off the page, no missing glyph, no network fetch), and its top
1100x1400 px is saved as an 8-bit palette PNG under 150 KB.

Usage (a few minutes on two cores; needs chromium)::

    python docs/make_screenshots.py                  # writes docs/img/report_*.png
    python docs/make_screenshots.py --keep /tmp/reports --only run sweep
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1100, 1400
MAX_BYTES = 150_000

DATA = """
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM], start: 2018-01-01,
       end: 2020-12-31}
benchmark: {dataset: sp500_index, asset: SP500}
analysts: [{name: momentum, config: {lookback: 63}}]
costs: {commission_bps: 1, slippage_bps: 2}
executor: {kind: inline}
"""
STRATEGIES = """
strategies:
  - {label: top1, name: topk_long_short, config: {k: 1, rank_by: pred_return,
                                                  rebalance: weekly}}
  - {label: equal_weight, name: equal_weight, config: {rebalance: monthly}}
"""
WALKFORWARD = """
name: demo_walkforward
data: {source: sp500_stocks, assets: [AAPL, MSFT, JNJ, XOM], start: 2017-01-01,
       end: 2020-12-31}
benchmark: {dataset: sp500_index, asset: SP500}
analysts:
  - name: magnitude
    config:
      horizon: 5
      depth: 1
      width: 8
      features: {groups: [returns, ma_gaps, volatility], ma_windows: [5, 10]}
      train: {epochs: 2, batch_size: 128, patience: null, progress: false, seed: 3,
              threads: 1, device: cpu}
strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, rebalance: weekly}}
walkforward: {train: 2y, test: 6mo}
executor: {kind: inline}
report: {tearsheet: false, plots: false}
"""
RL = """
rl:
  env: {signals: [pred_return], episode_length: 60}
  agent:
    algorithm: ppo
    total_timesteps: 256
    hyperparameters: {n_steps: 64, batch_size: 32, n_epochs: 1}
    policy_kwargs: {net_arch: [16]}
    device: cpu
    torch_threads: 1
  seeds: [0, 1]
  train: {start: 2018-01-01, end: 2019-06-30}
  validation: {start: 2019-07-01, end: 2019-12-31}
  test: {start: 2020-01-01, end: 2020-12-31}
  eval_freq: 64
  checkpoint_freq: 64
"""


def _run(work: Path) -> Path:
    from alfred.run import run_scenario
    from alfred.scenario import parse_scenario

    text = "name: demo_run\n" + DATA + STRATEGIES + "report: {tearsheet: true, plots: false}\n"
    run_scenario(parse_scenario(text, source="demo_run.yaml", base_dir=work), out=work / "run")
    return work / "run"


def build_run(work: Path) -> Path:
    return _run(work) / "top1" / "tearsheet.html"


def build_comparison(work: Path) -> Path:
    folder = work / "run"
    return (folder if folder.is_dir() else _run(work)) / "comparison.html"


def build_walkforward(work: Path) -> Path:
    from alfred.scenario import parse_scenario
    from alfred.walkforward import run_walkforward

    run_walkforward(parse_scenario(WALKFORWARD, source="demo_walkforward.yaml", base_dir=work),
                    work / "wf", progress=False)
    return work / "wf" / "report.html"


def build_stress(work: Path) -> Path:
    from alfred.scenario import parse_scenario
    from alfred.stress import run_stress

    text = ("name: demo_stress\n" + DATA + STRATEGIES + "report: {plots: false}\n"
            "stress: {generator: regimes, paths: 24, days: 504, calibration_start: "
            "2018-01-01, shocks: [{kind: crash, at: 250, days: 10, drop: 0.25}]}\n")
    run_stress(parse_scenario(text, source="demo_stress.yaml", base_dir=work), work / "st",
               progress=False)
    return work / "st" / "report.html"


def build_sweep(work: Path) -> Path:
    from alfred.scenario import parse_scenario
    from alfred.sweep import run_sweep

    text = ("name: demo_sweep\n" + DATA
            + "strategy: {name: topk_long_short, config: {k: 1, rank_by: pred_return, "
              "rebalance: weekly}}\nreport: {tearsheet: false, plots: false}\n"
              "sweep: {params: {strategy.config.k: [1, 2], "
              "analysts.0.config.lookback: [21, 63, 126]}}\n")
    run_sweep(parse_scenario(text, source="demo_sweep.yaml", base_dir=work), work / "sw",
              executor="inline", progress=False)
    return work / "sw" / "report.html"


def build_train_rl(work: Path) -> Path:
    from alfred.train_rl import parse_rl_scenario, train_rl_scenario

    text = "name: demo_train_rl\n" + DATA + STRATEGIES + RL
    train_rl_scenario(parse_rl_scenario(text, source="demo_rl.yaml", base_dir=work),
                      out=work / "rl")
    return work / "rl" / "report.html"


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "run": build_run, "comparison": build_comparison, "walkforward": build_walkforward,
    "stress": build_stress, "sweep": build_sweep, "train-rl": build_train_rl,
}


def shoot(page: Path, png: Path, *, width: int = WIDTH, height: int = HEIGHT,
          max_bytes: int = MAX_BYTES) -> Path:
    """Check ``page`` in headless Chromium and save its top ``width`` x ``height`` px
    as a palette PNG of at most ``max_bytes`` (fewer colours until it fits)."""
    from PIL import Image

    from reports.check_render import check_page

    with tempfile.TemporaryDirectory(prefix="alfred-shot-") as tmp:
        raw = Path(tmp) / "raw.png"
        check_page(page, screenshot=raw, width=width, max_height=height)
        with Image.open(raw) as image:
            rgb = image.convert("RGB")
    png.parent.mkdir(parents=True, exist_ok=True)
    for colours in (256, 128, 64, 32):
        rgb.quantize(colors=colours, method=Image.Quantize.MEDIANCUT).save(
            png, optimize=True)
        if png.stat().st_size <= max_bytes:
            return png
    raise SystemExit(f"{png} is {png.stat().st_size} bytes even at 32 colours; "
                     f"take a smaller window")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"),
                        help="folder for report_<kind>.png (default docs/img)")
    parser.add_argument("--only", nargs="+", choices=sorted(BUILDERS), help="these kinds")
    parser.add_argument("--keep", help="build the reports in this folder and keep them")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="alfred-reports-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for kind in args.only or list(BUILDERS):
            page = BUILDERS[kind](work)
            png = shoot(page, Path(args.out) / f"report_{kind.replace('-', '_')}.png")
            print(f"{kind}: {png} ({png.stat().st_size // 1024} KB) from {page}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
