"""Load a recipe file into a checked :class:`~hdi.recipe.model.Recipe`, with ``file:line`` errors.

Everything that can be checked without data is checked here: keys at every level (with a
did-you-mean), value types, vendor/schema/stype_in/table/on_conflict/chunk period, dates and their
order, symbols, and the shape of every op's arguments. Column names are checked later, by
``compile_recipe``, against the decoded frame's schema.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from typing import Any, NoReturn

from hdi.errors import RecipeError, allowed_list, beyond_limit, did_you_mean
from hdi.recipe import checks
from hdi.recipe.args import Arg
from hdi.recipe.checks import Problem, message, type_name
from hdi.recipe.model import Chunk, Recipe, Request, Source, Step, Target, ValidateOptions
from hdi.recipe.registry import OPS
from hdi.recipe.yamlsrc import YamlProblem, YMap, parse_yaml

TOP_KEYS = ("name", "description", "source", "transform", "validate", "target")
SOURCE_KEYS = ("vendor", "gateway", "schema", "start", "end", "chunk", "requests", "batch_threshold_bytes")
MAX_RECIPE_BYTES = 1024 * 1024  # a real recipe is a few hundred bytes; 2000 symbols fit many times over
TOP_HINT = "a mapping with keys " + allowed_list(TOP_KEYS) + " (see docs/recipes.md)"


def load_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read, parse and check a recipe file.

    Args:
        path: The YAML file.

    Returns:
        The checked Recipe (column names are checked by ``compile_recipe``).

    Raises:
        RecipeError: One line, ``<file>:<line>: <what is wrong>; allowed: <values>``.
    """
    p = Path(path)
    file = str(p)
    text = _read(p)
    try:
        tree = parse_yaml(text, file)
    except YamlProblem as exc:
        err = RecipeError(message(file, exc.line, exc.what, exc.allowed or TOP_HINT))
        err.exit_code = exc.exit_code
        raise err from None
    if tree is None:
        raise RecipeError(message(file, 1, "the recipe is empty", TOP_HINT))
    if not isinstance(tree, YMap):
        raise RecipeError(message(file, getattr(tree, "line", 1),
                                  f"a recipe must be a mapping, got {type_name(tree)}", TOP_HINT))
    sink: dict[tuple[Any, ...], int] = {}
    root = Arg(tree, tree.line, "", file, (), sink)
    top = root.keys(("name", "source", "target"), ("description", "transform", "validate"), TOP_KEYS)
    name = top["name"].string("lower-case letters, digits and _, e.g. ohlcv_1d")
    if not checks.NAME_RE.match(name):
        top["name"].fail(f"bad recipe name '{name}'", "lower-case letters, digits and _ ([a-z0-9_]+)")
    description = top["description"].string("a one-line text") if "description" in top else ""
    source = _source(top["source"])
    transform = _transform(top["transform"], file) if "transform" in top else ()
    validate = _validate(top["validate"]) if "validate" in top else ValidateOptions()
    target = _target(top["target"])
    lines = {".".join(str(k) for k in key): line for key, line in sink.items() if key}
    return Recipe(name=name, description=description, path=p, source=source, transform=transform,
                  validate=validate, target=target, lines=lines)


def _read(p: Path) -> str:
    file = str(p)
    if not p.exists():
        siblings = sorted(str(s) for s in p.parent.glob("*.yaml")) if p.parent.is_dir() else []
        raise RecipeError(message(file, None, "recipe file not found",
                                  allowed_list(siblings) if siblings else "a path to a .yaml recipe file",
                                  did_you_mean(file, siblings)))
    if p.is_dir():
        raise RecipeError(message(file, None, "is a directory, not a recipe file", "a path to a .yaml recipe file"))
    try:
        info = p.stat()
    except OSError as exc:
        raise RecipeError(message(file, None, f"cannot read the recipe file ({exc.strerror})",
                                  "a readable .yaml recipe file")) from None
    if not stat.S_ISREG(info.st_mode):  # /dev/zero, a FIFO, a socket: unbounded or blocking
        raise beyond_limit(RecipeError(message(file, None, "is not a regular file",
                                               "a path to a .yaml recipe file (a regular file)")))
    too_big = f"a recipe file of at most {MAX_RECIPE_BYTES:,} bytes"
    if info.st_size > MAX_RECIPE_BYTES:
        raise beyond_limit(RecipeError(message(file, None, f"the file is {info.st_size:,} bytes", too_big)))
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_RECIPE_BYTES + 1)  # the file may grow after the stat
    except OSError as exc:
        raise RecipeError(message(file, None, f"cannot read the recipe file ({exc.strerror})",
                                  "a readable .yaml recipe file")) from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise beyond_limit(RecipeError(message(file, None, f"the file is more than {MAX_RECIPE_BYTES:,} bytes",
                                               too_big)))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RecipeError(message(file, line, "the file is not UTF-8 text", "a UTF-8 YAML file")) from None


def _problem(arg: Arg, problem: Problem) -> NoReturn:
    arg.fail(problem.what, problem.allowed, problem.hint, exit_code=problem.exit_code)


def _source(a: Arg) -> Source:
    # start, end and requests may be left out by a recipe used only with --from-file (files are
    # loaded whole); an ingest from Databento then refuses it (hdi.pipeline).
    kv = a.keys(("vendor", "schema"), ("gateway", "chunk", "start", "end", "requests", "batch_threshold_bytes"),
                SOURCE_KEYS)
    try:
        vendor = checks.choice(kv["vendor"].value, checks.VENDORS, "vendor")
    except Problem as p:
        _problem(kv["vendor"], p)
    gateway = None
    if "gateway" in kv and kv["gateway"].value is not None:
        gateway = kv["gateway"].string("null or a base URL such as https://hist.databento.com")
        if not gateway.startswith(("https://", "http://")) or len(gateway.split("://", 1)[1]) == 0:
            kv["gateway"].fail(f"bad gateway '{gateway}'", "null or a base URL such as https://hist.databento.com")
    try:
        schema = checks.choice(kv["schema"].value, checks.SCHEMAS, "schema")
    except Problem as p:
        _problem(kv["schema"], p)
    times: dict[str, dt.datetime | None] = {"start": None, "end": None}
    if ("start" in kv) != ("end" in kv):
        given, absent = ("start", "end") if "start" in kv else ("end", "start")
        kv[given].fail(f"given without source.{absent}",
                       "both (a range for Databento requests) or neither (a recipe for --from-file files only)")
    for key in ("start", "end") if "start" in kv else ():
        try:
            times[key] = checks.when(kv[key].value, key)
        except Problem as p:
            _problem(kv[key], p)
    if times["start"] is not None and times["end"] is not None:
        try:
            checks.date_range(times["start"], times["end"])
        except Problem as p:
            _problem(kv["start"], p)
    chunk = _chunk(kv["chunk"]) if "chunk" in kv else Chunk()
    requests = (tuple(_request(r) for r in kv["requests"].items("a list of {dataset, stype_in, symbols} mappings"))
                if "requests" in kv else ())
    threshold = (kv["batch_threshold_bytes"].integer(0, 10**18) if "batch_threshold_bytes" in kv
                 else DEFAULT_BATCH_THRESHOLD_BYTES)
    return Source(vendor=vendor, gateway=gateway, schema=schema, start=times["start"], end=times["end"],
                  chunk=chunk, requests=requests, batch_threshold_bytes=threshold)


DEFAULT_BATCH_THRESHOLD_BYTES = 5_000_000_000  # --batch auto: Databento recommends batch above about 5 GB


def _chunk(a: Arg) -> Chunk:
    kv = a.keys((), ("period", "max_symbols"))
    period = "month"
    if "period" in kv:
        try:
            period = checks.period(kv["period"].value)
        except Problem as p:
            _problem(kv["period"], p)
    max_symbols = kv["max_symbols"].integer(1, checks.MAX_SYMBOLS_PER_REQUEST) if "max_symbols" in kv else 10
    return Chunk(period=period, max_symbols=max_symbols)


def _request(a: Arg) -> Request:
    kv = a.keys(("dataset", "stype_in", "symbols"))
    try:
        dataset = checks.dataset(kv["dataset"].value)
    except Problem as p:
        _problem(kv["dataset"], p)
    try:
        stype_in = checks.choice(kv["stype_in"].value, checks.STYPES_IN, "stype_in")
    except Problem as p:
        _problem(kv["stype_in"], p)
    items = kv["symbols"].items("a list of symbols, e.g. [CL.c.0, NG.c.0]")
    try:
        checks.too_many(len(items))
    except Problem as p:
        _problem(kv["symbols"], p)
    symbols: dict[str, None] = {}
    for item in items:
        try:
            s = checks.symbol(item.value, stype_in)
        except Problem as p:
            _problem(item, p)
        if s in symbols:
            item.fail(f"symbol '{s}' is listed twice", "each symbol once per request")
        symbols[s] = None
    return Request(dataset=dataset, stype_in=stype_in, symbols=tuple(symbols))


def _transform(a: Arg, file: str) -> tuple[Step, ...]:
    steps = []
    shape = "a list of steps, each a one-key mapping {op: args}, e.g. - rename: {ts_event: bar_timestamp_utc}"
    for i, item in enumerate(a.items(shape, allow_empty=True)):
        if not isinstance(item.value, dict) or len(item.value) != 1:
            got = f"a mapping with {len(item.value)} keys" if isinstance(item.value, dict) else type_name(item.value)
            item.fail(f"a step must be a mapping with exactly one op, got {got}", allowed_list(OPS))
        (op_name, _), = item.value.items()
        line = item.value.line_of(op_name) if isinstance(item.value, YMap) else item.line  # YAML gives a YMap
        if op_name not in OPS:
            shown = f"'{op_name}'" if isinstance(op_name, str) else type_name(op_name)
            raise RecipeError(message(file, line, f"transform[{i}]: unknown op {shown}", allowed_list(OPS),
                                      did_you_mean(str(op_name), OPS)))
        sink: dict[tuple[Any, ...], int] = {}
        arg = Arg(item.value[op_name], line, f"transform[{i}] {op_name}", file, (), sink)
        args = OPS[op_name].parse(arg)
        steps.append(Step(op=op_name, args=args, line=line, index=i, lines=dict(sink)))
    return tuple(steps)


ON_BUDGET_EXCEEDED = ("report", "rollback")


def _validate(a: Arg) -> ValidateOptions:
    kv = a.keys((), ("max_failure_rate", "allow_non_positive_prices", "on_budget_exceeded"))
    rate = 0.01
    if "max_failure_rate" in kv:
        v = kv["max_failure_rate"].value
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            kv["max_failure_rate"].fail(f"expected a number from 0 to 1, got {type_name(v)}",
                                        "a fraction from 0 to 1, e.g. 0.01")
        rate = float(v)
    allow = None
    if "allow_non_positive_prices" in kv:
        allow = kv["allow_non_positive_prices"].value
        if not isinstance(allow, bool):
            kv["allow_non_positive_prices"].fail(f"expected true or false, got {type_name(allow)}", "true, false")
    on_exceeded = "report"
    if "on_budget_exceeded" in kv:
        try:
            on_exceeded = checks.choice(kv["on_budget_exceeded"].value, ON_BUDGET_EXCEEDED, "on_budget_exceeded")
        except Problem as p:
            _problem(kv["on_budget_exceeded"], p)
    return ValidateOptions(max_failure_rate=rate, allow_non_positive_prices=allow, on_budget_exceeded=on_exceeded)


def _target(a: Arg) -> Target:
    kv = a.keys(("table",), ("on_conflict",))
    values = {"table": checks.TABLE_NAMES, "on_conflict": checks.ON_CONFLICT}
    out = {"on_conflict": "ignore"}
    for key, allowed in values.items():
        if key in kv:
            try:
                out[key] = checks.choice(kv[key].value, allowed, key)
            except Problem as p:
                _problem(kv[key], p)
    return Target(table=out["table"], on_conflict=out["on_conflict"])
