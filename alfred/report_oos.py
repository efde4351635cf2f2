"""Out-of-sample numbers of the trained analysts on bundled data, next to the baselines.

    python -m alfred.report_oos                       # sp500_stocks, 60/20/20, horizon 1
    python -m alfred.report_oos --horizon 5 --out runs/analyst_oos_h5

Fits ``lstm`` and ``magnitude`` on the first 80 % of the timestamps (early stopping on
the last quarter of that), predicts the last 20 %, and writes per analyst
``evaluation.json`` / ``evaluation.md`` plus a ``summary.md`` with the overall rows and
the exact command, seed and timings. The numbers are whatever comes out: on daily
large-cap returns, expect models to sit near the constant baseline.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])

# Settings of the reported runs (small models; minutes on 2 CPU cores).
LSTM_CONFIG: dict[str, Any] = {
    "window": 20, "hidden_size": 32, "num_layers": 1, "dropout": 0.1, "loss": "bce",
    "train": {"epochs": 10, "batch_size": 512, "lr": 0.001, "patience": 3, "seed": 0},
}
MAGNITUDE_CONFIG: dict[str, Any] = {
    "depth": 2, "width": 64, "dropout": 0.1, "head": "tanh", "loss": "huber",
    "train": {"epochs": 20, "batch_size": 512, "lr": 0.001, "patience": 5, "seed": 0},
}


@app.command()
def main(
    out: Annotated[str, typer.Option(help="Output folder.")] = "runs/analyst_oos",
    dataset: Annotated[str, typer.Option(help="Bundled dataset.")] = "sp500_stocks",
    split: Annotated[str, typer.Option(help="train,validation,test fractions.")] = "0.6,0.2,0.2",
    horizon: Annotated[int, typer.Option(help="Label horizon in bars.", min=1)] = 1,
    epochs: Annotated[int | None, typer.Option(help="Override the epochs of both.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "auto",
    analysts: Annotated[str, typer.Option(help="Comma-separated analysts.")] = "lstm,magnitude",
) -> None:
    """Evaluate the trained analysts out of sample and write the report."""
    import engine
    from alfred.cli.analyst import parse_split
    from analysts import get_analyst
    from analysts.evaluation import evaluate_analyst

    fractions = parse_split(split)
    bars = engine.load_bars(dataset)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    configs = {"lstm": LSTM_CONFIG, "magnitude": MAGNITUDE_CONFIG}
    lines = [f"# Out-of-sample evaluation on `{dataset}` (horizon {horizon}, split {split})", "",
             f"Command: `python -m alfred.report_oos {' '.join(sys.argv[1:])}`".rstrip(), "",
             f"Machine: {platform.machine()}, Python {platform.python_version()}.", ""]
    summary: dict[str, Any] = {}
    for name in [a.strip() for a in analysts.split(",") if a.strip()]:
        config = json.loads(json.dumps(configs[name]))
        config["horizon"] = horizon
        config["train"]["device"] = device
        if epochs is not None:
            config["train"]["epochs"] = epochs
        began = time.perf_counter()
        result = evaluate_analyst(get_analyst(name, **config), bars, split=fractions,
                                  out=target / name)
        seconds = time.perf_counter() - began
        summary[name] = {"seconds": seconds, "overall": result.metrics["overall"],
                         "periods": result.periods, "n_rows": result.n_rows}
        table = result.table("overall")
        metrics = [c for c in table.columns if c not in ("scope", "predictor")]
        test = f"{result.periods['test_start'][:10]} .. {result.periods['test_end'][:10]}"
        lines += [f"## {name} ({seconds:.0f} s fit + predict; test {test}, "
                  f"{result.n_rows} rows)", "",
                  "| predictor | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for row in table.iter_rows(named=True):
            lines.append(f"| {row['predictor']} | " + " | ".join(
                "" if row[m] is None else (str(row[m]) if isinstance(row[m], int)
                                           else f"{row[m]:.4f}") for m in metrics) + " |")
        lines.append("")
        typer.echo(f"{name}: {seconds:.0f} s; wrote {target / name}")
    (target / "summary.md").write_text("\n".join(lines))
    (target / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    typer.echo((target / "summary.md").read_text())


if __name__ == "__main__":
    app()
