"""A picture of a continuous series: adjusted and traded closes, with every roll marked.

``plot_continuous(frame, path)`` draws a :func:`hdi.read_continuous` frame to a PNG: the adjusted
close (what a backtest sees), the unadjusted close (what traded, jumping at each roll), a dashed
line at each roll labelled with the contract rolled into, and the title naming the rule and the
adjustment. matplotlib is an optional extra (``pip install 'hdi[plot]'``); the file is written
through :mod:`hdi._fileout` (a temporary file renamed into place; an existing file only with
``force``).
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from hdi.errors import OutputError, QueryError


def _use_agg() -> None:
    """Select matplotlib's file-only backend before pyplot loads (matplotlib is optional)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401 - fails here, with the hint below, when matplotlib is absent
    except ImportError:
        raise OutputError("a picture needs matplotlib, which is not installed: pip install 'hdi[plot]'") from None


def plot_continuous(frame: pl.DataFrame, path: str | Path, *, title: str | None = None, force: bool = False,
                    protect: tuple[Path, ...] = ()) -> Path:
    """Write a PNG of ``frame`` (a :func:`hdi.read_continuous` result) to ``path``; returns the path.

    Raises:
        QueryError: the frame is empty or not a continuous series.
        OutputError: matplotlib is missing, or the path may not be written (see :mod:`hdi._fileout`).
    """
    from hdi._fileout import check_target, write_atomic

    path = Path(path)
    need = {"bar_timestamp_utc", "close_price", "close_price_unadjusted", "contract", "roll"}
    if not need <= set(frame.columns):
        raise QueryError(f"plot needs a read_continuous frame (columns {', '.join(sorted(need))})")
    if frame.height == 0:
        raise QueryError("nothing to plot: the continuous series is empty for that range")
    check_target(path, force=force, protect=protect)
    _use_agg()
    import matplotlib.pyplot as plt

    t = frame.get_column("bar_timestamp_utc").dt.replace_time_zone(None).to_list()
    fig, ax = plt.subplots(figsize=(11, 5.5), dpi=110)
    ax.plot(t, frame.get_column("close_price_unadjusted").to_list(), color="#9a9a9a", lw=1.2,
            label="unadjusted close (as traded)")
    ax.plot(t, frame.get_column("close_price").to_list(), color="#1f5fa8", lw=1.6, label="adjusted close")
    rolls = frame.with_row_index("_i").filter(pl.col("roll"))
    for i, contract in rolls.select("_i", "contract").iter_rows():
        ax.axvline(t[i], color="#c0392b", ls="--", lw=0.9, alpha=0.8)
        ax.annotate(f"→ {contract}", (t[i], 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", fontsize=8, color="#c0392b")
    ax.plot([], [], color="#c0392b", ls="--", lw=0.9, label=f"roll ({rolls.height})")
    ax.set_title(title or "continuous series", fontsize=11)
    ax.set_ylabel("price")
    ax.grid(alpha=0.25)
    ax.legend(loc="best", fontsize=9)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return write_atomic(path, lambda f: f.write(buf.getvalue()), force=force, protect=protect)
