"""Property: any recipe file, however malformed, gives ``hdi recipes validate`` either ``ok`` (exit 0)
or one line ``error: <file>:<line>: ...`` (exit 1, or 2 beyond a size limit); never a traceback, a
crash or a hang.

Recipes are generated three ways: a valid recipe with one value replaced by anything YAML can say
(scalars of every type, PyYAML tags, nested lists and mappings, huge or deep values), a valid recipe
with a generated ``derive``/``filter`` expression, and arbitrary text.
"""

from __future__ import annotations

import copy

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from .conftest import assert_clean, fresh_dir

VALID = {
    "name": "prop_recipe",
    "description": "generated",
    "source": {
        "vendor": "databento", "schema": "ohlcv-1d", "start": "2024-01-01", "end": "2024-03-01",
        "chunk": {"period": "month", "max_symbols": 10},
        "requests": [{"dataset": "GLBX.MDP3", "stype_in": "continuous", "symbols": ["CL.c.0", "NG.c.0"]}],
    },
    "transform": [
        {"rename": {"ts_event": "bar_timestamp_utc", "open": "open_price", "high": "high_price",
                    "low": "low_price", "close": "close_price"}},
        {"fixed_to_decimal": ["open_price", "high_price", "low_price", "close_price"]},
        {"constant": {"granularity": "1d", "data_source": "databento", "trade_count": None, "vwap": None}},
    ],
    "validate": {"max_failure_rate": 0.01},
    "target": {"table": "ohlcv", "on_conflict": "ignore"},
}
COLUMNS = ["open_price", "high_price", "low_price", "close_price", "volume", "instrument_id", "granularity",
           "bar_timestamp_utc", "nope"]
FUNCS = ["ABS", "ROUND", "COALESCE", "GREATEST", "LOWER", "SUM", "NOW", "nosuch", "CAST", "SUBSTR"]
OPS = ["+", "-", "*", "/", "%", "=", "<", ">=", "<>", "AND", "OR", "NOT", "||", "IS NULL", "BETWEEN", "IN"]

# YAML text fragments, including tags and values the loader must not choke on
TAGGED = ["!!timestamp 2024-01-01", "!!timestamp 0001-01-01T00:00:00+05:00", "!!binary aGVsbG8=", "!!set {a, b}",
          "!!omap [a: 1]", "!!pairs [a: 1]", "!!float .nan", "!!float -.inf", "!!int 0x7fffffffffffffffffff",
          "!!str 2024-01-01", "!!null ''", "!!bool yes", "2024-13-45", "9999-12-31T23:59:59-05:00",
          "1677-09-21", "0001-01-01", "2262-04-12", "1e400", "-0", "0o777", "~", "'\\n'", '"a\\nb\\u2028c"',
          "\"\\x1b[31mred\"", "[[[[[[[[[[]]]]]]]]]]", "{a: {b: {c: {d: {}}}}}", "&x [1, *x]",
          "!!timestamp x", "!!int abc", "!!int 0x", "!!float abc", "!!bool maybe", "!!map x", "!!seq x",
          "!!set [1]", "!!str [1]", "!!python/name:os.system x", "!foo x", "!!merge x",
          "[&a [x, x, x, x, x, x, x, x, x, x], &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], "
          "&c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c], "
          "&e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d], &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]]"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=80),
    st.text(alphabet="ABCXYZ.cv0123456789 -_/!:", max_size=90), st.dates(), st.datetimes(),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)


def paths(tree, prefix=()):
    """Every path to a value in the recipe tree."""
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from paths(v, (*prefix, i))


ALL_PATHS = [p for p in paths(VALID) if p]


def replaced(tree, path, value):
    out = copy.deepcopy(tree)
    node = out
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return out


@st.composite
def expressions(draw) -> str:
    """Expression-ish text: columns, numbers, strings, operators, calls, parentheses (balanced or not)."""
    parts = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["col", "num", "str", "op", "call", "open", "close", "junk"]))
        if kind == "col":
            parts.append(draw(st.sampled_from(COLUMNS)))
        elif kind == "num":
            parts.append(str(draw(st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)))))
        elif kind == "str":
            parts.append("'" + draw(st.text(alphabet="ab' ;-", max_size=6)).replace("'", "''") + "'")
        elif kind == "op":
            parts.append(draw(st.sampled_from(OPS)))
        elif kind == "call":
            parts.append(draw(st.sampled_from(FUNCS)) + "(")
        elif kind == "open":
            parts.append("(" * draw(st.integers(1, 40)))
        elif kind == "close":
            parts.append(")" * draw(st.integers(1, 40)))
        else:
            parts.append(draw(st.text(max_size=5)))
    text = " ".join(parts)
    if draw(st.booleans()):  # sometimes huge: many terms
        text = " + ".join([text] * draw(st.integers(1, 3000)))
    return text


@st.composite
def recipe_texts(draw) -> str:
    how = draw(st.sampled_from(["replace", "tagged", "expression", "text", "extra_key"]))
    if how == "replace":
        return yaml.safe_dump(replaced(VALID, draw(st.sampled_from(ALL_PATHS)), draw(values)), sort_keys=False)
    if how == "tagged":
        path = draw(st.sampled_from(ALL_PATHS))
        marker = "__VALUE__"
        text = yaml.safe_dump(replaced(VALID, path, marker), sort_keys=False)
        return text.replace(marker, draw(st.sampled_from(TAGGED)))
    if how == "expression":
        op = draw(st.sampled_from(["derive", "filter"]))
        step = {op: {"x": "__EXPR__"}} if op == "derive" else {op: "__EXPR__"}
        tree = copy.deepcopy(VALID)
        tree["transform"].insert(draw(st.integers(0, 3)), step)
        expr = draw(expressions())
        return yaml.safe_dump(tree, sort_keys=False, width=10**9).replace("__EXPR__", expr.replace("'", "''"))
    if how == "extra_key":
        tree = replaced(VALID, draw(st.sampled_from([("x",), ("source", "x"), ("validate", "x")])), draw(values))
        return yaml.safe_dump(tree, sort_keys=False)
    return draw(st.text(max_size=400))


@given(recipe_texts())
@example(yaml.safe_dump(VALID, sort_keys=False))  # the unmodified recipe is valid
@example(yaml.safe_dump(replaced(VALID, ("transform",), [{"derive": {"x": " + ".join(["open_price"] * 20000)}}])))
@example("name: " + "[" * 5000 + "]" * 5000)
@example(yaml.safe_dump(VALID, sort_keys=False).replace("vwap: null", "vwap: 0001-01-01T00:00:00+05:00"))  # fuzz find
@example(yaml.safe_dump(VALID, sort_keys=False).replace("vwap: null", "vwap: !!timestamp x"))
def test_any_recipe_validates_or_fails_in_one_line(run_hdi, tmp_path, text):
    work = fresh_dir(tmp_path)
    f = work / "r.yaml"
    f.write_text(text, encoding="utf-8", errors="surrogatepass")
    out = run_hdi("recipes", "validate", f)
    if assert_clean(out):
        assert (out.stdout + out.stderr).strip().startswith(f"{f}: ok ("), out
    else:
        assert out.stderr.startswith(f"error: {f}"), out
