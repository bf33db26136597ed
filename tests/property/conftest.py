"""Hypothesis profiles and helpers for the property-based suite (issue 8).

Profiles, chosen by ``HDI_HYPOTHESIS_PROFILE`` (default ``ci``):

- ``ci``: what ``make test`` runs: few examples per property, derandomized (the same examples on
  every run), so the whole folder finishes in well under two minutes on a loaded machine;
- ``fuzz``: what ``make fuzz`` runs: many random examples per property (``HDI_HYPOTHESIS_EXAMPLES``,
  default 2000), new ones each run; failures are kept in ``.hypothesis/`` and replayed first.

``HDI_HYPOTHESIS_EXAMPLES`` overrides the number of examples of either profile.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
            HealthCheck.filter_too_much]
settings.register_profile("ci", max_examples=int(os.environ.get("HDI_HYPOTHESIS_EXAMPLES", "25")), deadline=None,
                          derandomize=True, database=None, suppress_health_check=_SLOW_OK, print_blob=True)
settings.register_profile("fuzz", max_examples=int(os.environ.get("HDI_HYPOTHESIS_EXAMPLES", "2000")),
                          deadline=None, suppress_health_check=_SLOW_OK, print_blob=True)
settings.load_profile(os.environ.get("HDI_HYPOTHESIS_PROFILE", "ci"))

# One example must finish well within this, or it counts as a hang (a real hang is also stopped by
# pytest-timeout). Generous: the machine running CI is shared.
HANG_SECONDS = 30.0


class Outcome:
    """The result of one in-process ``hdi`` command."""

    def __init__(self, exit_code: int, stdout: str, stderr: str, seconds: float) -> None:
        self.exit_code, self.stdout, self.stderr, self.seconds = exit_code, stdout, stderr, seconds

    def __repr__(self) -> str:
        return f"exit {self.exit_code} in {self.seconds:.1f}s\nstdout: {self.stdout[-2000:]}\nstderr: {self.stderr[-2000:]}"


@pytest.fixture(scope="session")
def run_hdi():
    """run_hdi(*args) -> Outcome; an exception escaping the command fails the example with its traceback."""
    from typer.testing import CliRunner

    from hdi.cli.app import app

    runner = CliRunner()

    def run(*args: object) -> Outcome:
        t0 = time.perf_counter()
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=True)
        seconds = time.perf_counter() - t0
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"hdi {' '.join(map(str, args))[:300]} raised") from result.exception
        return Outcome(result.exit_code, result.stdout, result.stderr, seconds)

    return run


def assert_clean(out: Outcome, ok_codes: tuple[int, ...] = (0,), *, chunk_failed: bool = False) -> bool:
    """Either success (an ``ok_codes`` exit), or exit 1/2 with stderr one line ``error: ...``; never a
    traceback or a hang. ``chunk_failed``: the run itself went ahead and recorded a failed chunk, so
    exit 1 with the run's summary is the expected report. Returns True for success."""
    assert out.seconds < HANG_SECONDS, out
    text = out.stdout + out.stderr
    assert "Traceback" not in text and 'File "' not in text, out
    if out.exit_code in ok_codes:
        return True
    if chunk_failed:
        assert out.exit_code == 1 and "failed" in text, out
        return False
    assert out.exit_code in (1, 2), out
    # the error is one line, the last; warnings logged before it (a skipped symbol mapping) may precede it
    lines = out.stderr.rstrip("\n").split("\n")
    assert lines[-1].startswith("error: "), out
    assert all(not line.startswith("error") for line in lines[:-1]), out
    assert all(line.startswith(("WARNING", "warning", " ")) for line in lines[:-1]), out
    return False


def fresh_dir(root: Path) -> Path:
    """A new empty folder under ``root`` for one example (tmp_path is shared by all examples)."""
    import tempfile

    return Path(tempfile.mkdtemp(dir=root))
