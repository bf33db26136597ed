"""Patito, imported without pandas.

Patito imports pandas when it is installed (``try: import pandas``), only to also accept pandas
frames; hdi hands it Polars frames only. pandas costs ~0.3 s of every process that validates
(``hdi ingest``), so unless something imported it already, patito is imported while ``import
pandas`` raises ImportError (a ``None`` entry in ``sys.modules``, removed right after): patito then
runs without its pandas support. A later ``import pandas`` anywhere in the process works as usual.
"""

from __future__ import annotations

import sys
import threading

_LOCK = threading.Lock()


def _import() -> None:
    with _LOCK:
        if "patito" in sys.modules or "pandas" in sys.modules:
            import patito  # noqa: F401 - already imported, or pandas is there anyway
            return
        import polars  # noqa: F401 - first, outside the window: Polars notes which optional modules exist
        import pydantic  # noqa: F401

        sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
        try:
            import patito  # noqa: F401
        finally:
            if sys.modules.get("pandas", 0) is None:
                del sys.modules["pandas"]


_import()

import patito as pt  # noqa: E402 - imported above, without pandas

__all__ = ["pt"]
