"""Research helpers on stored data: exchange calendars, trading-day bars, settlements known as of a time.

- :mod:`hdi.research.calendars` — which exchange calendar a (dataset, symbol) trades on
  (``calendar_for``), its sessions as a small Polars frame (``schedule``: ``trading_date``, UTC
  ``open``/``close``, ``early_close``), and each UTC timestamp's trading date
  (``with_trading_date``, ``trading_date_expr``). Calendars come from pandas_market_calendars
  (pinned); pandas is used only to build a schedule, which is cached per calendar and range.
- :mod:`hdi.research.sessions` — daily bars on the exchange's trading day and intraday bars anchored
  at the session open, built from stored 1m bars.
- :mod:`hdi.research.stats` — settlement price, cleared volume and open interest per trading date,
  each with the time it became known, as of any instant.

See docs/sessions.md. Importing this package imports neither Polars nor pandas.
"""
