"""``alfred report FOLDER``: rebuild the report pages of any folder Alfred wrote, from its
saved files (no engine run, no refit).

The folder's kind decides what is rebuilt:

- **run** (``alfred run``): metrics.json, tear sheet and plots of each strategy from its
  parquet frames, and the comparison of a multi-strategy run.
- **walkforward**: each strategy's ``report.html`` (stitched curve, folds, in-sample vs
  out-of-sample) from returns.parquet, folds.parquet, benchmark.parquet and metrics.json.
- **stress**: ``report.html`` (fan chart, quantile table) from returns.parquet,
  quantiles.csv and metrics.json.
- **sweep**: ``report.html`` (ranked table with DSR, heat map over two swept keys) from
  summary.parquet and sweep.yaml; also written by ``alfred sweep`` itself
  (:func:`write_sweep_report`).
- **train-rl**: ``report.html`` (learning curves per seed, seeds table, test span against
  the baselines) from seed_*/evaluations.npz and evaluation/; also written by
  ``alfred train-rl`` (:func:`write_train_rl_report`).

The kind is read from the files themselves: ``sweep.yaml`` marks a sweep, the
``.alfred-run`` marker says ``train-rl``, metrics.json says ``walkforward`` or
``stress``; anything else with metrics.json is a run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from alfred.outputs import MARKER
from engine.errors import ConfigError, DataError

ProgressFn = Callable[[str, int, int], None]
REPORT_FILE = "report.html"
KINDS = ("run", "walkforward", "stress", "sweep", "train-rl")


def folder_kind(folder: Path) -> str:
    """``run``, ``walkforward``, ``stress``, ``sweep`` or ``train-rl`` (see module doc)."""
    if (folder / "sweep.yaml").is_file():
        return "sweep"
    marker = _read_json(folder / MARKER) if (folder / MARKER).is_file() else {}
    if marker.get("kind") in ("sweep", "train-rl"):
        return str(marker["kind"])
    for metrics in _metrics_files(folder):
        kind = _read_json(metrics).get("kind")
        if kind in ("walkforward", "stress"):
            return str(kind)
    if (folder / "evaluation").is_dir() and any(folder.glob("seed_*")):
        return "train-rl"
    if _metrics_files(folder):
        return "run"
    raise ConfigError(f"{folder} holds no report Alfred can rebuild (no metrics.json, "
                      "sweep.yaml or evaluation/); pass a folder written by alfred run, "
                      "walkforward, stress, sweep or train-rl")


def rebuild(folder: str | Path, progress: ProgressFn | None = None) -> tuple[str, list[Path]]:
    """Rebuild the reports of ``folder``; returns its kind and the files written."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"run folder {root} does not exist; pass a folder written by an "
                          "alfred command (e.g. runs/<name>/<timestamp>)")
    report = progress or (lambda step, done, total: None)
    kind = folder_kind(root)
    builders = {"run": _rebuild_run, "walkforward": _rebuild_walkforward,
                "stress": _rebuild_stress, "sweep": lambda f, p: [write_sweep_report(f)],
                "train-rl": lambda f, p: [write_train_rl_report(f)]}
    written = builders[kind](root, report)
    return kind, written


def _metrics_files(folder: Path) -> list[Path]:
    own = folder / "metrics.json"
    return [own] if own.is_file() else sorted(folder.glob("*/metrics.json"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); the folder was changed after the "
                        "run -- restore the file or rerun the command") from None
    return data if isinstance(data, dict) else {}


def _read_parquet(path: Path, required: bool = True) -> pl.DataFrame | None:
    if not path.is_file():
        if required:
            raise DataError(f"{path} is missing; the report cannot be rebuilt without it "
                            "(restore the file or rerun the command)")
        return None
    return pl.read_parquet(path)


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "config.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _strategy_label(config: dict[str, Any], default: str) -> str:
    spec = config.get("strategy") or {}
    return str(spec.get("label") or spec.get("name") or default)


# --- run -------------------------------------------------------------------------------


def _rebuild_run(root: Path, report: ProgressFn) -> list[Path]:
    import reports

    subruns = sorted(p.parent for p in root.glob("*/config.yaml"))
    folders = subruns or [root]
    total = len(folders) + (1 if subruns else 0)
    for i, folder in enumerate(folders):
        report(f"{folder.name}: metrics, tear sheet, plots", i, total)
        tearsheet, plots = _report_options(folder)
        reports.rebuild_report(folder, tearsheet=tearsheet, plots=plots)
    if subruns:
        report("comparison", len(folders), total)
        reports.write_comparison(root, subruns)
    report("done", total, total)
    return [f / "metrics.json" for f in folders]


def _report_options(folder: Path) -> tuple[bool, bool]:
    """The run's own report options (its config.yaml); both on when it has none."""
    options = _config(folder).get("report") or {}
    return bool(options.get("tearsheet", True)), bool(options.get("plots", True))


# --- walk-forward ----------------------------------------------------------------------


def _rebuild_walkforward(root: Path, report: ProgressFn) -> list[Path]:
    folders = [p.parent for p in _metrics_files(root)]
    multi = folders != [root]
    total = len(folders) + multi
    written = []
    for i, folder in enumerate(folders):
        report(f"{folder.name}: walk-forward report", i, total)
        written.append(_walkforward_page(folder, multi))
    if multi:
        from alfred.walkforward import write_walkforward_index

        report("all strategies: walk-forward report", len(folders), total)
        written.append(write_walkforward_index(root, folders))
    report("done", total, total)
    return written


def _walkforward_page(folder: Path, multi: bool = False) -> Path:
    from reports import render_walkforward, write_page

    metrics = _read_json(folder / "metrics.json")
    settings = metrics.get("settings") or {}
    config = _config(folder)
    label = _strategy_label(config, folder.name)
    title = f"{config.get('name', folder.name)}: {label} (walk-forward OOS)"
    page = render_walkforward(
        title=title, returns=_read_parquet(folder / "returns.parquet"),
        folds=_read_parquet(folder / "folds.parquet"), metrics=metrics.get("with_costs") or {},
        in_sample=metrics.get("in_sample"),
        benchmark=_read_parquet(folder / "benchmark.parquet", required=False),
        benchmark_label=settings.get("benchmark") or "Benchmark",
        periods_per_year=float(settings["periods_per_year"]),
        tearsheet_href="tearsheet.html" if (folder / "tearsheet.html").is_file() else None,
        crumbs=[("../report.html", "all strategies")] if multi else ())
    return write_page(folder / REPORT_FILE, page)


# --- stress ----------------------------------------------------------------------------


def _rebuild_stress(root: Path, report: ProgressFn) -> list[Path]:
    from reports import render_stress, write_page

    report("stress report", 0, 1)
    metrics = _read_json(root / "metrics.json")
    quantiles = root / "quantiles.csv"
    if not quantiles.is_file():
        raise DataError(f"{quantiles} is missing; restore it or rerun alfred stress")
    page = render_stress(
        title=f"{metrics.get('name', root.name)}: stress test",
        returns=_read_parquet(root / "returns.parquet"), quantiles=pl.read_csv(quantiles),
        beats=metrics.get("beats_benchmark"),
        info=[f"{metrics.get('n_paths')} paths, generator {metrics.get('generator')}, seed "
              f"{metrics.get('seed')}", f"benchmark: {metrics.get('benchmark')}"])
    path = write_page(root / REPORT_FILE, page)
    report("done", 1, 1)
    return [path]


# --- sweep -----------------------------------------------------------------------------


def write_sweep_report(folder: str | Path) -> Path:
    """``report.html`` of a sweep folder: ranked table with DSR, heat map over the first
    two swept keys that vary, links to each variant's tear sheet or comparison."""
    from reports import render_sweep, write_page

    root = Path(folder)
    manifest = yaml.safe_load((root / "sweep.yaml").read_text(encoding="utf-8")) or {}
    scenario = manifest.get("scenario") or {}
    spec = scenario.get("sweep") or {}
    summary = _read_parquet(root / "summary.parquet", required=False)
    if summary is None:
        summary = pl.DataFrame({"variant": [], "strategy": []},
                               schema={"variant": pl.String, "strategy": pl.String})
    params = list(dict.fromkeys(k for v in manifest.get("variants") or []
                                for k in (v.get("params") or {})))
    metric = str(spec.get("metric") or "sharpe")
    links = {}
    for row in summary.iter_rows(named=True):
        folder = row.get("run_dir") or f"runs/{row.get('variant')}"
        for name in ("tearsheet.html", "comparison.html"):
            if row.get("variant") not in links and (root / folder / name).is_file():
                links[str(row["variant"])] = f"{folder}/{name}"
    page = render_sweep(title=f"{scenario.get('name', root.name)}: sweep", summary=summary,
                        metric=metric if metric in summary.columns else "sharpe",
                        params=params, descending=spec.get("order", "desc") == "desc",
                        run_links=links)
    return write_page(root / REPORT_FILE, page)


# --- train-rl --------------------------------------------------------------------------

# portfolio's comparison columns -> the metric keys of reports' definitions
_RL_COLUMNS = {"win_rate": "win_rate_periods"}


def write_train_rl_report(folder: str | Path) -> Path:
    """``report.html`` of a train-rl folder: validation reward per seed during training
    (seed_*/evaluations.npz), the seeds' test metrics, and the test span against the
    baselines (evaluation/runs.csv, summary.csv, equity.parquet)."""
    from reports import render_train_rl, write_page

    root = Path(folder)
    evaluation = root / "evaluation"
    if not (evaluation / "runs.csv").is_file():
        raise DataError(f"{evaluation / 'runs.csv'} is missing; the training did not finish "
                        "(rerun alfred train-rl, with --resume to continue)")
    runs = pl.read_csv(evaluation / "runs.csv").rename(
        lambda c: _RL_COLUMNS.get(c, c))
    seeds = runs.filter(pl.col("seed").is_not_null())
    test: dict[str, dict[str, Any]] = {}
    for (label,), group in runs.group_by("strategy", maintain_order=True):
        name = str(label) if group["seed"].null_count() else \
            f"{label} (mean of {group.height} seeds)"
        test[name] = {c: group[c].mean() for c in group.columns
                      if c not in ("strategy", "seed") and group[c].dtype.is_numeric()}
    equity = _read_parquet(evaluation / "equity.parquet", required=False)
    test_returns, span = {}, None
    if equity is not None and equity.height:
        span = (str(equity["ts"].min())[:10], str(equity["ts"].max())[:10])
        for (label, seed), group in equity.group_by("strategy", "seed", maintain_order=True):
            name = str(label) if seed is None else f"{label} seed {seed}"
            values = group.sort("ts")["equity"].to_numpy()
            ret = np.concatenate(([0.0], values[1:] / values[:-1] - 1.0))
            test_returns[name] = pl.DataFrame({"ts": group.sort("ts")["ts"], "return": ret})
    config = _config(root)
    page = render_train_rl(title=f"{config.get('name', root.name)}: train-rl",
                           curves=_learning_curves(root),
                           seeds=seeds.drop("strategy").select("seed", pl.exclude("seed")),
                           test=test, test_returns=test_returns, test_span=span)
    return write_page(root / REPORT_FILE, page)


def _learning_curves(root: Path) -> pl.DataFrame:
    """``seed, step, reward``: SB3's validation log of each seed (mean episode reward)."""
    frames = []
    for log in sorted(root.glob("seed_*/evaluations.npz")):
        seed = int(log.parent.name.removeprefix("seed_"))
        with np.load(log) as data:
            steps = np.asarray(data["timesteps"], dtype=np.int64)
            reward = np.asarray(data["results"], dtype=np.float64).reshape(steps.size, -1)
        frames.append(pl.DataFrame({"seed": np.full(steps.size, seed), "step": steps,
                                    "reward": reward.mean(axis=1)}))
    if not frames:
        return pl.DataFrame(schema={"seed": pl.Int64, "step": pl.Int64, "reward": pl.Float64})
    return pl.concat(frames)
