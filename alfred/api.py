"""The Python API a notebook uses: typed results with ``.metrics()``, ``.tearsheet()``
and ``.plot()``.

    import alfred
    result = alfred.run("scenarios/quickstart.yaml")     # or a dict, as the YAML reads
    result.summary                  # one row per strategy (a polars frame)
    result["topk"].metrics()        # flat dict: with costs, and *_without_costs
    result["topk"].tearsheet("topk.html")
    result["topk"].plot()           # matplotlib Figure: growth of 1 vs the benchmark

    bt = alfred.run_backtest(bars, signals, strategy="nuanced")   # a Backtest
    bt.metrics()["sharpe"], bt.metrics()["sharpe_without_costs"]
    alfred.metrics(engine_result)   # any engine.BacktestResult (without costs: NaN)

The engine knows nothing of reports (``engine/`` imports no other Alfred package), so
these views live here, on top of both. ``alfred.run(...)`` is :func:`alfred.run.run`,
which wraps ``run_scenario``'s summary in a :class:`RunResult`.

``metrics()`` keys: every key of ``reports.METRIC_DEFINITIONS`` (the run with the
scenario's costs) followed by the same keys suffixed ``_without_costs`` (the same run
under ``Costs.zero()``); NaN where a metric is undefined or the run without costs is
unknown. ``metrics_table()`` is the same as a frame with labels and definitions.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from engine.costs import Costs
from engine.errors import ConfigError
from engine.result import BacktestResult

WITHOUT_COSTS = "_without_costs"
NAN = float("nan")


def _definitions() -> dict[str, str]:
    from reports import METRIC_DEFINITIONS

    return METRIC_DEFINITIONS


def flat_metrics(nested: dict[str, Any]) -> dict[str, float]:
    """``metrics.json``'s ``with_costs`` / ``without_costs`` sections as one flat dict
    (see the module docstring for the keys); None (JSON null) becomes NaN."""
    names = list(_definitions())
    net = nested.get("with_costs") or {}
    gross = nested.get("without_costs") or {}
    out = {name: _number(net.get(name)) for name in names}
    out.update({name + WITHOUT_COSTS: _number(gross.get(name)) for name in names})
    return out


def _number(value: Any) -> float:
    return NAN if value is None else float(value)


def metrics_table(nested: dict[str, Any]) -> pl.DataFrame:
    """One row per metric: key, label, with costs, without costs, definition."""
    from reports import metric_label

    flat = flat_metrics(nested)
    names = list(_definitions())
    return pl.DataFrame({
        "metric": names,
        "label": [metric_label(n) for n in names],
        "with_costs": [flat[n] for n in names],
        "without_costs": [flat[n + WITHOUT_COSTS] for n in names],
        "definition": [_definitions()[n] for n in names],
    })


class _Views(ABC):
    """What every result with returns offers: metrics, a tear sheet, an equity chart.

    Subclasses provide ``_nested()`` (metrics in ``metrics_for_result``'s shape),
    ``_returns()`` (a ``ts, return`` frame, with costs), ``_benchmark()`` (a ``ts,
    return`` frame or None) and ``_title()``.
    """

    def metrics(self) -> dict[str, float]:
        """Every metric with costs and ``*_without_costs`` (see :mod:`alfred.api`)."""
        return flat_metrics(self._nested())

    def metrics_table(self) -> pl.DataFrame:
        """The metrics as a frame: metric, label, with_costs, without_costs, definition."""
        return metrics_table(self._nested())

    def tearsheet(self, path: str | os.PathLike[str]) -> Path:
        """Write the HTML tear sheet (offline, one file) to ``path``; returns the path."""
        from reports import write_tearsheet

        nested = self._nested()
        settings = nested.get("settings") or {}
        target = Path(path).expanduser()
        if target.is_dir():
            target = target / "tearsheet.html"
        return write_tearsheet(target, self._returns(), self._benchmark(), self._title(),
                               periods_per_year=settings.get("periods_per_year"),
                               rf=float(settings.get("rf") or 0.0), metrics=nested,
                               benchmark_label=self._benchmark_label())

    def plot(self):
        """Growth of 1 after costs against the benchmark: a matplotlib Figure."""
        from reports import plot_equity

        return plot_equity(self._returns(), self._benchmark(), title=self._title(),
                           benchmark_label=self._benchmark_label())

    def _benchmark_label(self) -> str:
        return (self._nested().get("settings") or {}).get("benchmark") or "Benchmark"

    @abstractmethod
    def _nested(self) -> dict[str, Any]:
        """Provided by each concrete result."""

    @abstractmethod
    def _returns(self) -> pl.DataFrame:
        """Provided by each concrete result."""

    @abstractmethod
    def _benchmark(self) -> pl.DataFrame | None:
        """Provided by each concrete result."""

    @abstractmethod
    def _title(self) -> str:
        """Provided by each concrete result."""


# --- one backtest in memory ---------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Backtest(BacktestResult, _Views):
    """An ``engine.BacktestResult`` (every frame and field of it) plus the same run under
    ``Costs.zero()`` (``gross_result``), a benchmark, and the views of :class:`_Views`."""

    gross_result: BacktestResult | None = None
    benchmark: pl.DataFrame | None = None  # ts, return
    benchmark_label: str | None = None
    rf: float = 0.0

    @classmethod
    def wrap(cls, result: BacktestResult, *, gross_result: BacktestResult | None = None,
             benchmark: pl.DataFrame | None = None, benchmark_label: str | None = None,
             rf: float = 0.0) -> Backtest:
        fields = {name: getattr(result, name) for name in
                  ("panel", "records", "counts", "capital", "costs", "fill", "settings")}
        return cls(**fields, gross_result=gross_result, benchmark=benchmark,
                   benchmark_label=benchmark_label, rf=rf)

    def __repr__(self) -> str:
        gross = ("" if self.gross_result is None else
                 f", without costs {self.gross_result.final_equity:,.2f}")
        return f"Backtest({super().__repr__()}{gross})"

    def _nested(self) -> dict[str, Any]:
        cached = self.__dict__.get("_metrics_cache")
        if cached is None:
            from reports import metrics_for_result

            cached = metrics_for_result(self, gross_result=self.gross_result,
                                        benchmark=self.benchmark, rf=self.rf,
                                        benchmark_label=self.benchmark_label)
            self.__dict__["_metrics_cache"] = cached
        return cached

    def _returns(self) -> pl.DataFrame:
        return self.returns

    def _benchmark(self) -> pl.DataFrame | None:
        return self.benchmark

    def _title(self) -> str:
        return str(self.settings.get("strategy") or "Strategy")


def run_backtest(bars: Any, signals_or_weights: Any = None, *, strategy: str | Any = "weights",
                 without_costs: bool = True, benchmark: pl.DataFrame | None = None,
                 benchmark_label: str | None = None, rf: float = 0.0,
                 **settings: Any) -> Backtest:
    """:func:`engine.run_backtest` with registry names, returning a :class:`Backtest`.

    ``without_costs`` also runs the same plan under ``Costs.zero()`` (as ``alfred run``
    does) so ``metrics()`` has the ``*_without_costs`` figures; pass False to run once.
    ``benchmark`` is a ``ts, return`` frame for the benchmark metrics and charts.
    """
    from alfred.components import run_backtest as run_named

    result = run_named(bars, signals_or_weights, strategy=strategy, **settings)
    gross = None
    if without_costs:
        gross = run_named(bars, signals_or_weights, strategy=strategy,
                          **{**settings, "costs": Costs.zero()})
    return Backtest.wrap(result, gross_result=gross, benchmark=benchmark,
                         benchmark_label=benchmark_label, rf=rf)


def metrics(result: BacktestResult, *, gross_result: BacktestResult | None = None,
            benchmark: pl.DataFrame | None = None, rf: float = 0.0) -> dict[str, float]:
    """The flat metrics of any ``engine.BacktestResult`` (``*_without_costs`` from
    ``gross_result``, the same run under ``Costs.zero()``; NaN without it)."""
    if not isinstance(result, BacktestResult):
        raise ConfigError(f"alfred.metrics takes an engine.BacktestResult (or an "
                          f"alfred.Backtest), got {type(result).__name__}; for a run folder "
                          "use alfred.run(...)[label].metrics()")
    if isinstance(result, Backtest) and gross_result is None and benchmark is None:
        return result.metrics()
    return Backtest.wrap(result, gross_result=gross_result, benchmark=benchmark,
                         rf=rf).metrics()


# --- a scenario run (its run folder) ------------------------------------------------


@dataclass(frozen=True, eq=False)
class StrategyResult(_Views):
    """One strategy of a scenario run, read from its run folder on demand."""

    run: Any  # alfred.run.StrategyRun (headline figures and the folder)
    benchmark_label: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    label = property(lambda self: self.run.label)
    strategy = property(lambda self: self.run.strategy)
    run_dir = property(lambda self: self.run.run_dir)
    final_equity = property(lambda self: self.run.final_equity)
    total_return = property(lambda self: self.run.total_return)
    total_return_without_costs = property(lambda self: self.run.total_return_without_costs)
    n_closed_trades = property(lambda self: self.run.n_closed_trades)
    n_open_trades = property(lambda self: self.run.n_open_trades)

    @property
    def equity(self) -> pl.DataFrame:
        """The engine's equity frame with a ``return`` column (equity.parquet)."""
        return self._frame("equity.parquet")

    @property
    def trades(self) -> pl.DataFrame:
        """Round trips, open ones with ``is_open`` true (trades.parquet)."""
        return self._frame("trades.parquet")

    @property
    def orders(self) -> pl.DataFrame:
        return self._frame("orders.parquet")

    @property
    def fills(self) -> pl.DataFrame:
        return self._frame("fills.parquet")

    def _frame(self, name: str) -> pl.DataFrame:
        if name not in self._cache:
            path = self.run.run_dir / name
            if not path.is_file():
                raise ConfigError(f"{path} is missing; the run folder was changed after the "
                                  "run (rerun the scenario, or `alfred report` it)")
            self._cache[name] = pl.read_parquet(path)
        return self._cache[name]

    def _nested(self) -> dict[str, Any]:
        if self.run.metrics:
            return self.run.metrics
        if "metrics" not in self._cache:
            path = self.run.run_dir / "metrics.json"
            self._cache["metrics"] = (json.loads(path.read_text(encoding="utf-8"))
                                      if path.is_file() else {})
        return self._cache["metrics"]

    def _returns(self) -> pl.DataFrame:
        return self.equity.select("ts", "return")

    def _benchmark(self) -> pl.DataFrame | None:
        path = self.run.run_dir / "benchmark.parquet"
        return pl.read_parquet(path) if path.is_file() else None

    def _title(self) -> str:
        return self.run.label

    def _benchmark_label(self) -> str:
        return self.benchmark_label or super()._benchmark_label()

    def __repr__(self) -> str:
        return (f"StrategyResult({self.label!r}, total_return={self.total_return:.2%}, "
                f"closed_trades={self.n_closed_trades}, open_trades={self.n_open_trades}, "
                f"run_dir={str(self.run_dir)!r})")


_SUMMARY_COLUMNS = ("total_return", "cagr", "sharpe", "max_drawdown", "win_rate_trades",
                    "n_trades", "n_open_trades")
_SUMMARY_NAMES = {"n_trades": "n_closed_trades"}  # the metric key says less than the name


@dataclass(frozen=True, eq=False)
class RunResult:
    """What ``alfred.run`` returns: the run folder, the headline figures and one
    :class:`StrategyResult` per strategy (``result["label"]``, ``for s in result``)."""

    raw: Any  # alfred.run.RunSummary, as `alfred run` prints it
    strategies: dict[str, StrategyResult]

    name = property(lambda self: self.raw.name)
    run_dir = property(lambda self: self.raw.run_dir)
    benchmark = property(lambda self: self.raw.benchmark)
    benchmark_return = property(lambda self: self.raw.benchmark_return)
    period = property(lambda self: self.raw.period)
    n_bars = property(lambda self: self.raw.n_bars)
    n_assets = property(lambda self: self.raw.n_assets)
    elapsed_s = property(lambda self: self.raw.elapsed_s)
    warnings = property(lambda self: self.raw.warnings)

    @classmethod
    def from_summary(cls, summary: Any) -> RunResult:
        return cls(raw=summary, strategies={
            run.label: StrategyResult(run, benchmark_label=summary.benchmark)
            for run in summary.runs})

    def __getitem__(self, label: str) -> StrategyResult:
        try:
            return self.strategies[label]
        except KeyError:
            raise KeyError(f"no strategy labelled {label!r} in run {self.name!r}; labels: "
                           f"{', '.join(self.strategies)}") from None

    def __iter__(self) -> Iterator[StrategyResult]:
        return iter(self.strategies.values())

    def __len__(self) -> int:
        return len(self.strategies)

    @property
    def summary(self) -> pl.DataFrame:
        """One row per strategy: headline metrics with costs (closed and open trades
        apart), total return without costs, and the benchmark's total return."""
        rows = []
        for result in self:
            flat = result.metrics()
            row: dict[str, Any] = {"strategy": result.label}
            row.update({_SUMMARY_NAMES.get(k, k): flat[k] for k in _SUMMARY_COLUMNS})
            row["total_return_without_costs"] = flat["total_return" + WITHOUT_COSTS]
            row["benchmark_total_return"] = self.benchmark_return
            rows.append(row)
        return pl.DataFrame(rows, infer_schema_length=None)

    def metrics(self) -> pl.DataFrame:
        """Every strategy's flat metrics (see :mod:`alfred.api`), one row per strategy."""
        return pl.DataFrame([{"strategy": r.label, **r.metrics()} for r in self],
                            infer_schema_length=None)

    def only(self) -> StrategyResult:
        """The one strategy of a single-strategy run."""
        if len(self) != 1:
            raise ConfigError(f"run {self.name!r} has {len(self)} strategies "
                              f"({', '.join(self.strategies)}); pick one: result[label]")
        return next(iter(self))

    def tearsheet(self, path: str | os.PathLike[str]) -> Path:
        """The tear sheet of a single-strategy run (else ``result[label].tearsheet``)."""
        return self.only().tearsheet(path)

    def plot(self):
        """The equity chart of a single-strategy run (else ``result[label].plot()``)."""
        return self.only().plot()

    def __repr__(self) -> str:
        start, end = self.period
        return (f"RunResult({self.name!r}, {len(self)} strategies: "
                f"{', '.join(self.strategies)}; {start:%Y-%m-%d} to {end:%Y-%m-%d}; "
                f"run_dir={str(self.run_dir)!r})")

