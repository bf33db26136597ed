"""Reading op arguments out of the YAML tree, with the line of every value for error messages.

An :class:`Arg` wraps one YAML value with its line and a label such as ``transform[2] rename``.
Op parsers call its accessors (``pairs``, ``keys``, ``columns``, ...); each accessor either returns
clean Python values or raises a one-line RecipeError at the value's line. Every Arg records its line
in a shared sink keyed by the argument path, so compile-time errors (an unknown column, say) can
point at the exact line too.
"""

from __future__ import annotations

from typing import Any, NoReturn

from hdi.errors import RecipeError, allowed_list, did_you_mean
from hdi.recipe.checks import message, type_name
from hdi.recipe.yamlsrc import YList, YMap

COLUMN_HINT = "a column name (a string)"


class Arg:
    """One argument value at a known line."""

    def __init__(self, value: Any, line: int, label: str, file: str,
                 path: tuple[Any, ...] = (), sink: dict[tuple[Any, ...], int] | None = None) -> None:
        self.value, self.line, self.label, self.file, self.path = value, line, label, file, path
        self.sink = sink if sink is not None else {}
        self.sink.setdefault(path, line)

    def fail(self, what: str, allowed: str, hint: str = "", *, exit_code: int = 1) -> NoReturn:
        what = f"{self.label}: {what}" if self.label else what
        err = RecipeError(message(self.file, self.line, what, allowed, hint))
        err.exit_code = exit_code
        raise err

    def _child(self, key: Any, line: int, value: Any) -> Arg:
        if not isinstance(key, int) or isinstance(key, bool):
            label = f"{self.label}.{key}" if self.label else str(key)
        else:
            label = f"{self.label}[{key}]"
        return Arg(value, line, label, self.file, (*self.path, key), self.sink)

    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    def is_list(self) -> bool:
        return isinstance(self.value, list)

    def pairs(self, shape: str) -> list[tuple[Any, Arg]]:
        """A non-empty mapping ``{key: value}`` with free keys; ``shape`` describes it for errors."""
        if not isinstance(self.value, dict):
            self.fail(f"expected a mapping, got {type_name(self.value)}", shape)
        if not self.value:
            self.fail("the mapping is empty", shape)
        lines = self.value.key_lines if isinstance(self.value, YMap) else {}
        return [(k, self._child(k, lines.get(k, self.line), v)) for k, v in self.value.items()]

    def keys(self, required: tuple[str, ...], optional: tuple[str, ...] = (),
             order: tuple[str, ...] | None = None) -> dict[str, Arg]:
        """A mapping with fixed key names; unknown keys (with a did-you-mean) and missing ones fail.

        ``order`` is how the allowed keys are listed in messages (default: required, then optional).
        """
        allowed = order or required + optional
        if not isinstance(self.value, dict):
            self.fail(f"expected a mapping, got {type_name(self.value)}", f"a mapping with keys {allowed_list(allowed)}")
        out: dict[str, Arg] = {}
        for key, child in self.pairs(f"a mapping with keys {allowed_list(allowed)}"):
            if key not in allowed:
                shown = f"'{key}'" if isinstance(key, str) else type_name(key)
                child.label = self.label
                child.fail(f"unknown key {shown}", allowed_list(allowed), did_you_mean(str(key), allowed))
            out[key] = child
        missing = [k for k in required if k not in out]
        if missing:
            self.fail(f"missing key '{missing[0]}'", f"a mapping with keys {allowed_list(allowed)} "
                      f"(required: {allowed_list(required)})")
        return out

    def items(self, shape: str, *, allow_empty: bool = False) -> list[Arg]:
        """A list; ``shape`` describes what is expected."""
        if not isinstance(self.value, list):
            self.fail(f"expected a list, got {type_name(self.value)}", shape)
        if not self.value and not allow_empty:
            self.fail("the list is empty", shape)
        lines = self.value.item_lines if isinstance(self.value, YList) else []
        return [self._child(i, lines[i] if i < len(lines) else self.line, v) for i, v in enumerate(self.value)]

    def string(self, allowed: str = "a string") -> str:
        if not isinstance(self.value, str) or not self.value:
            self.fail(f"expected a non-empty string, got {type_name(self.value)}", allowed)
        return self.value

    def column(self) -> str:
        return self.string(COLUMN_HINT)

    def key_column(self, key: Any) -> str:
        """A mapping key that names a column (YAML may have read ``yes``/``1`` as non-strings)."""
        if not isinstance(key, str) or not key:
            self.fail(f"key {type_name(key)} must be a column name (quote it in YAML)", COLUMN_HINT)
        return key

    def columns(self) -> list[str]:
        """A non-empty list of distinct column names."""
        cols = [a.column() for a in self.items("a list of column names, e.g. [open, close]")]
        dup = next((c for i, c in enumerate(cols) if c in cols[:i]), None)
        if dup is not None:
            self.fail(f"column '{dup}' is listed twice", "each column once")
        return cols

    def integer(self, lo: int, hi: int) -> int:
        v = self.value
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.fail(f"expected an integer from {lo} to {hi}, got {type_name(v)}", f"{lo}..{hi}")
        return v

    def choice(self, allowed: tuple[str, ...], what: str) -> str:
        if not isinstance(self.value, str) or self.value not in allowed:
            shown = f"'{self.value}'" if isinstance(self.value, str) else type_name(self.value)
            hint = did_you_mean(self.value, allowed) if isinstance(self.value, str) else ""
            self.fail(f"unknown {what} {shown}", allowed_list(allowed), hint)
        return self.value
