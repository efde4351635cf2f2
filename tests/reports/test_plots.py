"""PNG plots: files are valid images; the numbers behind them are checked separately."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
from matplotlib import image

from engine.errors import ConfigError
from reports import write_plots
from reports._plots import monthly_returns_table, rolling_sharpe, rolling_window

qs = pytest.importorskip("quantstats")  # imported at collection: its import alone takes seconds

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _returns(n: int = 300, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.bdate_range("2021-01-04", periods=n).to_numpy()
    return pl.DataFrame({"ts": ts, "return": rng.normal(0.0004, 0.01, n)})


def test_write_plots_writes_four_valid_pngs(tmp_path):
    frame = _returns()
    bench = frame.with_columns(pl.col("return") * 0.5)
    paths = write_plots(tmp_path / "plots", frame, benchmark=bench, periods_per_year=252,
                        title="demo")
    assert [p.name for p in paths] == ["equity.png", "drawdown.png", "monthly_returns.png",
                                       "rolling_sharpe.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        pixels = image.imread(str(path))
        assert pixels.shape[0] >= 250 and pixels.shape[1] == 1000
        assert float(np.std(pixels[..., :3])) > 0.05  # not a blank canvas
    assert not list((tmp_path / "plots").glob(".*"))  # no temporary files left


def test_plots_infer_the_frequency_and_refuse_frames_without_ts(tmp_path):
    paths = write_plots(tmp_path, _returns(60))
    assert len(paths) == 4
    with pytest.raises(ConfigError, match="timestamps"):
        write_plots(tmp_path, np.array([0.01, 0.02]))


def test_monthly_table_matches_quantstats():
    frame = _returns(400)
    r = frame["return"].to_numpy()
    ts_ns = frame["ts"].cast(pl.Datetime("ns")).to_numpy().view(np.int64)
    ours = monthly_returns_table(r, ts_ns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = qs.stats.monthly_returns(pd.Series(r, index=pd.DatetimeIndex(frame["ts"])),
                                          eoy=False)
    assert ours.height == pd.DatetimeIndex(frame["ts"]).to_period("M").nunique()
    months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    for year, month, value in ours.iter_rows():
        assert value == pytest.approx(float(theirs.loc[str(year), months[month - 1]]), rel=1e-9)


def test_rolling_sharpe_matches_pandas():
    frame = _returns(200)
    r = frame["return"].to_numpy()
    window = rolling_window(r.size, 252)
    assert window == 66  # half a year (126) does not fit twice into 200 bars
    s = pd.Series(r)
    expected = (s.rolling(window).mean() / s.rolling(window).std(ddof=1) * math.sqrt(252))
    np.testing.assert_allclose(rolling_sharpe(r, window, 252), expected.to_numpy(),
                               rtol=1e-9, equal_nan=True)
    assert rolling_window(10_000, 252) == 126
