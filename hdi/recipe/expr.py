"""The safe expression language of ``derive`` and ``filter``: one SQL scalar expression per string.

Expressions are parsed by ``polars.sql_expr`` (no Python is ever evaluated) and then narrowed:

- one expression only: no ``;``, no comments, no subqueries or other statements
  (``SELECT``, ``FROM``, ``WITH``, ``EXISTS``, ``UNION``, ``JOIN``, ``OVER``, ... are rejected);
- function calls only from :data:`FUNCTIONS`, all row-wise: aggregates (``SUM``, ``COUNT``), window
  functions and clock/random functions (``NOW``) are refused with the reason, because they would
  make a row's value depend on the chunk it is in or on when it ran;
- every column it reads must exist in the frame at that step (checked at compile time);
- it is small: at most :data:`MAX_CHARS` characters, :data:`MAX_TOKENS` tokens and
  :data:`MAX_DEPTH` levels of nested parentheses, checked before Polars parses anything (a
  20,000-term sum used to crash the process in Polars' recursive parser).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from hdi.errors import allowed_list, did_you_mean
from hdi.recipe.checks import Problem

if TYPE_CHECKING:
    import polars as pl

FUNCTIONS = (
    "ABS", "CEIL", "CEILING", "FLOOR", "ROUND", "TRUNC", "SQRT", "CBRT", "EXP", "LN", "LOG", "LOG2",
    "LOG10", "LOG1P", "POW", "POWER", "MOD", "SIGN", "PI", "GREATEST", "LEAST", "COALESCE", "NULLIF",
    "IFNULL", "IF", "LOWER", "UPPER", "LENGTH", "CHAR_LENGTH", "OCTET_LENGTH", "CONCAT", "CONCAT_WS",
    "SUBSTR", "LEFT", "RIGHT", "LTRIM", "RTRIM", "TRIM", "REPLACE", "REVERSE", "STARTS_WITH",
    "ENDS_WITH", "STRPOS", "REGEXP_LIKE", "SPLIT_PART", "INITCAP", "STRPTIME", "DATE", "DATE_PART",
    "DATE_TRUNC", "STRFTIME", "TIMESTAMP", "CAST", "TRY_CAST",
)
# Functions refused with a reason: their value for a row would depend on the chunk the row is in,
# or on when the recipe ran, so re-ingesting the same data would not give the same rows.
_AGGREGATES = frozenset({
    "SUM", "COUNT", "AVG", "MEAN", "MIN", "MAX", "FIRST", "LAST", "MEDIAN", "STDDEV", "STDDEV_SAMP",
    "STDDEV_POP", "STDEV", "VARIANCE", "VAR", "VAR_SAMP", "VAR_POP", "ARRAY_AGG", "STRING_AGG", "LISTAGG",
    "QUANTILE_CONT", "QUANTILE_DISC", "ROW_NUMBER", "RANK", "DENSE_RANK", "PERCENT_RANK", "CUME_DIST",
    "NTILE", "LAG", "LEAD", "FIRST_VALUE", "LAST_VALUE", "NTH_VALUE", "COUNT_IF", "BOOL_AND", "BOOL_OR",
    "ANY_VALUE", "CORR", "COVAR_POP", "COVAR_SAMP", "UNNEST", "EXPLODE"})
_VOLATILE = frozenset({"NOW", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "LOCALTIME", "LOCALTIMESTAMP",
                       "RANDOM", "RAND", "UUID", "GEN_RANDOM_UUID"})
# Words that may stand before "(" without being a function call.
_PAREN_WORDS = frozenset({"AND", "OR", "NOT", "IN", "IS", "WHEN", "THEN", "ELSE", "CASE", "AS", "BETWEEN",
                          "LIKE", "ILIKE", "DECIMAL", "NUMERIC", "VARCHAR", "CHAR", "DATETIME", "INTERVAL"})
_BLOCKED = frozenset({"SELECT", "FROM", "WITH", "EXISTS", "UNION", "INTERSECT", "EXCEPT", "JOIN", "OVER",
                      "WINDOW", "QUALIFY", "LATERAL", "VALUES", "INTO", "TABLE", "ORDER", "GROUP",
                      "HAVING", "LIMIT", "OFFSET", "PARTITION", "INSERT", "UPDATE", "DELETE", "DROP",
                      "CREATE", "ALTER", "COPY", "PRAGMA", "ATTACH"})
_STRING = re.compile(r"'(?:[^']|'')*'")
_QUOTED_ID = re.compile(r'"(?:[^"]|"")*"')
_DISTINCT_FROM = re.compile(r"\bIS\s+(?:NOT\s+)?DISTINCT\s+FROM\b", re.IGNORECASE)
_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_WORD = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\b")
MAX_CHARS = 2000
MAX_TOKENS = 500
MAX_DEPTH = 16
LIMITS = (f"an expression of at most {MAX_CHARS} characters, {MAX_TOKENS} tokens and {MAX_DEPTH} levels of "
          "nested parentheses")
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_]*|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?"""
                    r"|<=|>=|<>|!=|\|\||::|\S")
ALLOWED = "one SQL scalar expression over the frame's columns, e.g. (high_price + low_price) / 2 " \
          "(see docs/recipes.md, 'Expressions')"


def _skeleton(text: str) -> str:
    """The expression with string literals and quoted names blanked, for keyword scanning."""
    out = _QUOTED_ID.sub(" _id_ ", _STRING.sub(" _str_ ", text))
    if "'" in out or out.count('"') % 2:
        raise Problem("unterminated quote in expression", ALLOWED)
    return _DISTINCT_FROM.sub(" IS DISTINCT_FROM ", out)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def check_size(text: str) -> None:
    """Length, token count and parenthesis depth within the limits, before anything parses ``text``.

    Raises:
        Problem: (exit code 2) naming the expression's start and the limit it exceeds.
    """
    if len(text) > MAX_CHARS:
        raise Problem(f"expression {_shown(text)} is {len(text):,} characters long", LIMITS, exit_code=2)
    tokens = depth = deepest = 0
    for m in _TOKEN.finditer(text):
        tokens += 1
        tok = m.group()
        if tok == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif tok == ")":
            depth -= 1
    if tokens > MAX_TOKENS:
        raise Problem(f"expression {_shown(text)} has {tokens:,} tokens", LIMITS, exit_code=2)
    if deepest > MAX_DEPTH:
        raise Problem(f"expression {_shown(text)} nests parentheses {deepest} deep", LIMITS, exit_code=2)


def parse(text: str) -> pl.Expr:
    """Parse and narrow one expression (no column check; see :func:`columns_read`).

    Raises:
        Problem: Beyond the size limits (:func:`check_size`), not one scalar expression, a blocked keyword, a function outside FUNCTIONS, or SQL
            that polars cannot parse.
    """
    import polars as pl

    if not isinstance(text, str) or not text.strip():
        raise Problem("expression is empty", ALLOWED)
    check_size(text)
    skel = _skeleton(text)
    if ";" in skel:
        raise Problem("';' is not allowed: an expression is a single SQL expression", ALLOWED)
    if "--" in skel or "/*" in skel:
        raise Problem("comments are not allowed inside an expression", ALLOWED)
    words = _WORD.findall(skel)
    blocked = next((w for w in words if w.upper() in _BLOCKED), None)
    if blocked is not None:
        raise Problem(f"'{blocked}' is not allowed: only a scalar expression, no subqueries or statements",
                      ALLOWED)
    functions = allowed_list(f.lower() for f in FUNCTIONS)
    volatile = next((w for w in words if w.upper() in _VOLATILE), None)
    if volatile is not None:
        raise Problem(f"'{volatile}' is not allowed: its value changes from run to run, so re-ingesting would "
                      "change rows", functions)
    for name in _CALL.findall(skel):
        upper = name.upper()
        if upper in _AGGREGATES:
            raise Problem(f"function '{name}' is not allowed: it aggregates or ranks rows, so a row's value "
                          "would depend on the chunk it is in", functions)
        if upper not in FUNCTIONS and upper not in _PAREN_WORDS:
            raise Problem(f"unknown function '{name}'", functions, did_you_mean(upper, FUNCTIONS).lower())
    try:
        expr = pl.sql_expr(text)
    except Exception as exc:  # polars raises SQLInterfaceError/SQLSyntaxError/ComputeError here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Problem(f"cannot parse expression {text!r}: {first}", ALLOWED) from None
    if _has_subplan(json.loads(expr.meta.serialize(format="json"))):
        raise Problem("subqueries are not allowed in an expression", ALLOWED)
    return expr


def _has_subplan(node: Any) -> bool:
    """Whether a serialized expression tree (Polars' ``meta.serialize``) holds a subquery node."""
    if isinstance(node, dict):
        return "SubPlan" in node or any(_has_subplan(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_subplan(v) for v in node)
    return False


def columns_read(expr: pl.Expr) -> list[str]:
    """The distinct column names an expression reads, in order of first use."""
    names: list[str] = []
    for n in expr.meta.root_names():
        if n not in names:
            names.append(n)
    return names
