"""Validation: split frames into good rows (conformed to the table) and bad rows (quarantined).

Import from the modules (this package imports nothing, so that ``hdi status``, which only reads
the quarantine, does not pay for importing Patito and Pydantic, about 0.35 s):

- ``hdi.validate.split``: ``split(frame, table, *, start, end, allow_non_positive_prices)`` and
  ``SplitResult``;
- ``hdi.validate.models``: ``model_for(table)``, the Patito model derived from ``hdi._tables``;
- ``hdi.validate.rules``: ``row_rules(table, ...)``, ``{reason: expression True when valid}``;
- ``hdi.validate.conform``: which input dtypes may be cast to a table's, row by row;
- ``hdi.validate.quarantine``: ``check_writable``, ``write_quarantine``, ``enforce_failure_rate``,
  ``read_quarantine``, ``quarantine_summary``;
- ``hdi.validate.price_rules``: ``PriceRule``, which instruments may trade at or below zero;
- ``hdi.validate.budget``: the quarantine budget (``Budget``, ``Verdict``), its ``budget.json`` per
  run, and ``open_quarantine`` / ``over_budget`` for ``hdi status``.
"""
