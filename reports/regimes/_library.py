"""Named market regimes: historical windows of US equities, selectable by name.

Dates are those of the S&P 500's turning points where a regime is defined by one (the
dot-com peak of 2000-03-24 and trough of 2002-10-09, the 2007-10-09 peak, the 2009-03-09
trough, the COVID peak of 2020-02-19 and trough of 2020-03-23, the 2022-10-12 low), and
calendar spans where the regime is a period (the 2003-2007 bull, sideways 2015-2016,
Q4 2018). A scenario picks one with ``data: {regime: gfc}``; ``alfred regimes`` lists
them, and a sweep over ``data.regime`` runs a strategy through all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from engine.errors import ConfigError
from engine.text import did_you_mean


@dataclass(frozen=True)
class Regime:
    name: str
    start: date
    end: date
    kind: str  # bull, bear, sideways or crash
    description: str


REGIMES: dict[str, Regime] = {r.name: r for r in (
    Regime("dotcom_crash", date(2000, 3, 24), date(2002, 10, 9), "bear",
           "dot-com bust: S&P 500 peak to trough, -49%"),
    Regime("pre_gfc_bull", date(2003, 1, 1), date(2007, 10, 9), "bull",
           "2003-2007 bull market up to the pre-crisis peak"),
    Regime("gfc", date(2007, 10, 9), date(2009, 3, 9), "bear",
           "global financial crisis: peak to trough, -57%"),
    Regime("recovery", date(2009, 3, 10), date(2013, 12, 31), "bull",
           "post-crisis recovery, 2009-2013"),
    Regime("drawdown_2011", date(2011, 4, 29), date(2011, 10, 3), "bear",
           "2011 euro-debt and US downgrade drawdown, -19%"),
    Regime("sideways_2015_2016", date(2015, 1, 1), date(2016, 12, 31), "sideways",
           "range-bound 2015-2016 (oil slump, China devaluation)"),
    Regime("q4_2018", date(2018, 10, 1), date(2018, 12, 31), "bear",
           "Q4 2018 sell-off (rates, trade war)"),
    Regime("covid_crash", date(2020, 2, 19), date(2020, 3, 23), "crash",
           "COVID crash: peak to trough in 23 trading days, -34%"),
    Regime("post_covid_bull", date(2020, 3, 24), date(2021, 12, 31), "bull",
           "post-COVID bull market, 2020-03-24 to the end of 2021"),
    Regime("bear_2022", date(2022, 1, 3), date(2022, 10, 12), "bear",
           "2022 bear market: inflation and rate hikes, -25%"),
)}


def get_regime(name: str) -> Regime:
    """The named regime; ConfigError listing every name when it does not exist."""
    try:
        return REGIMES[name]
    except KeyError:
        raise ConfigError(f"unknown regime {name!r}.{did_you_mean(name, REGIMES, sentence=True)} Named "
                          f"regimes: {', '.join(REGIMES)}") from None


def regimes_table():
    """Every named regime as a polars frame (name, kind, start, end, description)."""
    import polars as pl

    return pl.DataFrame([{"name": r.name, "kind": r.kind, "start": r.start, "end": r.end,
                          "description": r.description} for r in REGIMES.values()])
