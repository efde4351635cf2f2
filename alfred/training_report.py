"""``training.json`` and ``loss.png``: what the trained analysts of a run learnt.

The trainable analysts (``magnitude``, ``lstm``) report their fit through
``fit_summary()["training"]``: per model (``*`` for the pooled one, else the asset) the
feature list, the training and validation windows, per-epoch train and validation loss,
the best epoch and why training stopped. Ensembles carry their members' summaries, so the
search walks the whole summary tree; each trained analyst is keyed by its path in it
(``0:magnitude``, ``1:ensemble/members/0:lstm``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_MAX_LINES = 8  # per-symbol models beyond this are drawn without a legend entry


def trained_analysts(summaries: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every ``training`` section in the analysts' fit summaries, keyed by its path."""
    found: dict[str, dict[str, Any]] = {}

    def walk(path: str, node: Any) -> None:
        if not isinstance(node, dict):
            return
        training = node.get("training")
        if isinstance(training, dict) and isinstance(training.get("units"), dict):
            found[path] = training
        for key, value in node.items():
            if key != "training":
                walk(f"{path}/{key}", value)

    for key, summary in summaries.items():
        walk(str(key), summary)
    return found


def write_training(run_dir: Path, summaries: dict[str, Any]) -> bool:
    """Write ``training.json`` and ``loss.png`` into ``run_dir`` when an analyst was
    trained; returns whether anything was written."""
    trained = trained_analysts(summaries)
    if not trained:
        return False
    (run_dir / "training.json").write_text(
        json.dumps({"analysts": trained}, indent=2, default=str) + "\n", encoding="utf-8")
    from reports import plot_style

    figure = loss_figure(trained)
    with plot_style():  # rcParams are read when saving too
        figure.savefig(run_dir / "loss.png", dpi=90)
    return True


def loss_figure(trained: dict[str, dict[str, Any]]):
    """One panel per trained analyst: train (solid) and validation (dashed) loss per
    epoch for each of its models, the best epoch marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from reports import plot_style

    with plot_style():
        n = len(trained)
        fig = Figure(figsize=(8.0, 3.2 * n), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(n, 1, squeeze=False)[:, 0]
        for ax, (path, training) in zip(axes, trained.items(), strict=True):
            _draw(ax, path, training)
    return fig


def _draw(ax, path: str, training: dict[str, Any]) -> None:
    from matplotlib import rcParams

    cycle = [c["color"] for c in rcParams["axes.prop_cycle"]]
    units = training["units"]
    for i, (key, unit) in enumerate(units.items()):
        history = unit.get("history") or []
        if not history:
            continue
        color = cycle[i % len(cycle)]
        name = "pooled" if key == "*" else key
        labelled = i < _MAX_LINES
        epochs = [h["epoch"] for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], color=color, lw=1.4,
                label=f"{name} train" if labelled else None)
        val = [h.get("val_loss") for h in history]
        if any(v is not None for v in val):
            ax.plot(epochs, [float("nan") if v is None else v for v in val], color=color,
                    lw=1.4, ls="--", label=f"{name} validation" if labelled else None)
            best = unit.get("best_epoch", -1)
            if 1 <= best <= len(val) and val[best - 1] is not None:
                ax.plot([best], [val[best - 1]], "o", color=color, ms=5)
    extra = len(units) - _MAX_LINES
    title = f"{path}: loss per epoch (dot: best epoch)"
    if extra > 0:
        title += f" ({extra} more models drawn without labels)"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")
