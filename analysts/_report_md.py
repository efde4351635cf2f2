"""Markdown of an evaluation: verdict first, the model next to every baseline, the tests."""

from __future__ import annotations

import math
from typing import Any

SHOWN = ("n", "n_flat", "mae", "rmse", "pct_return_mae", "r2", "pearson", "accuracy",
         "up_share", "precision", "recall", "f1", "tuned_overlap")


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def test_lines(tests: dict[str, Any], scope: str = "overall") -> list[str]:
    """The DM, direction and cross-sectional tables of one scope's tests."""
    lines = []
    if tests.get("dm"):
        lines += [f"### {scope}: model vs return baselines (Diebold-Mariano, absolute error)",
                  ""]
        lines += _table(["baseline", "rows", "mean loss diff", "DM stat", "p (two-sided)",
                         "p (model better)"],
                        [[b, t["n"], t["mean"], t["stat"], t["p_value"], t["p_better"]]
                         for b, t in tests["dm"].items()])
    lines += [f"### {scope}: direction vs baselines (flat rows excluded)", ""]
    lines += _table(["baseline", "rows", "flat", "model acc", "baseline acc", "wins",
                     "losses", "binomial p", "HAC p"],
                    [[b, t["n"], t["n_flat"], t["accuracy"], t["baseline_accuracy"],
                      t["wins"], t["losses"], t["binom_p"], t["hac_p"]]
                     for b, t in tests["direction"].items()])
    if "ic" in tests:
        ic, spread, turn = tests["ic"], tests["spread"], tests["turnover"]
        lines += [f"### {scope}: ranking skill", ""]
        lines += _table(["AUC", "IC", "IC t", "rank IC", "rank IC t", "rank IC > 0",
                         "dates", "top-bottom spread", "spread t", "rank autocorr",
                         "top turnover"],
                        [[tests["auc"], ic["ic"], ic["ic_t"], ic["rank_ic"], ic["rank_ic_t"],
                          ic["rank_ic_hit"], ic["dates"], spread["spread"],
                          spread["spread_t"], turn["rank_autocorr"], turn["top_turnover"]]])
    prob = tests.get("probabilistic", {})
    if "crps" in prob:
        lines += [f"### {scope}: sample paths ({prob['rows']} forecasts, "
                  f"{prob['samples_per_row']} samples each)", ""]
        lines += _table(["CRPS", "CRPS climatology", "CRPS skill", "80% coverage",
                         "90% coverage", "PIT histogram (10 bins)"],
                        [[prob["crps"], prob["crps_climatology"], prob["crps_skill"],
                          prob["coverage_80"], prob["coverage_90"],
                          " ".join(f"{v:.2f}" for v in prob["pit_histogram"])]])
    if "brier" in tests:
        lines += [f"Brier score of prob_up: {fmt(tests['brier'])} (majority baseline "
                  f"{fmt(tests['brier_majority'])}).", ""]
        lines += _table(["prob bin", "rows", "mean prob_up", "observed up"],
                        [[f"{r['bin'] / 10:.1f}-{(r['bin'] + 1) / 10:.1f}", r["n"],
                          r["mean_prob"], r["observed_up"]] for r in tests["reliability"]])
    return lines


def evaluation_markdown(evaluation: Any) -> str:
    periods = evaluation.periods
    lines = [f"# {evaluation.analyst}: out-of-sample evaluation (horizon "
             f"{evaluation.horizon})", "",
             f"**Verdict: {evaluation.verdict}.**", ""]
    lines += [f"**Note: {note}.**" for note in evaluation.notes]
    lines += [f"Fit on {periods['fit_start']} .. {periods['fit_end']}; test "
              f"{periods['test_start']} .. {periods['test_end']}; {evaluation.n_rows} test "
              f"rows shared by every predictor. Baselines: zero (no change), drift "
              f"(fit-period mean return), last (last {evaluation.horizon}-bar return "
              f"repeats), always_up, majority ({evaluation.majority} in the fit period).", ""]
    table = evaluation.table()
    shown = [c for c in SHOWN if c in table.columns]
    lines += _table(["scope", "predictor", *shown],
                    [[r["scope"], r["predictor"], *(r[c] for c in shown)]
                     for r in table.iter_rows(named=True)])
    lines += ["## Significance", ""] + test_lines(evaluation.tests["overall"])
    if evaluation.ic_decay:
        lines += ["### IC decay (rank IC of the signal with the return h bars ahead)", ""]
        lines += _table(["h", "rank IC", "t", "dates"],
                        [[d["horizon"], d["rank_ic"], d["rank_ic_t"], d["dates"]]
                         for d in evaluation.ic_decay])
    lines += ["### Per asset", ""]
    lines += _table(["asset", "verdict", *(f"DM p vs {b}" for b in
                                            evaluation.tests["overall"]["dm"]),
                     "HAC p vs majority"],
                    [[scope, t["verdict"], *(d["p_better"] for d in t["dm"].values()),
                      t["direction"]["majority"]["hac_p"]]
                     for scope, t in evaluation.tests.items() if scope != "overall"])
    return "\n".join(lines)
