"""Docs that are generated from code stay true to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_schema_doc_is_up_to_date():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "schema_doc.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
