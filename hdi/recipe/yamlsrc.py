"""Safe YAML with line numbers: mappings and lists that remember where each entry was written.

The recipe loader needs ``file:line`` for every error, so the document is built with
``yaml.SafeLoader`` (no Python tags, no code) into :class:`YMap` / :class:`YList`, plain ``dict`` and
``list`` subclasses that carry the line of the container and of each key or item. Duplicate keys,
which PyYAML silently resolves to the last one, are an error here.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 32  # a recipe nests 5 levels; PyYAML's recursion fails near 1000
MAX_VALUES = 100_000  # 2000 symbols and a long transform are a few thousand


class YMap(dict[Any, Any]):  # keys and values as YAML gives them
    """A YAML mapping: ``line`` is where it starts, ``key_lines[key]`` where each key is written."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    """A YAML sequence: ``line`` is where it starts, ``item_lines[i]`` where item ``i`` is written."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class YamlProblem(Exception):
    """A document that is not valid YAML, or has a duplicate key; ``line`` is 1-based.

    ``allowed`` (when set) says what would be right; ``exit_code`` 2 marks a document beyond a limit.
    """

    def __init__(self, line: int, what: str, allowed: str = "", *, exit_code: int = 1) -> None:
        super().__init__(what)
        self.line = line
        self.what = what
        self.allowed = allowed
        self.exit_code = exit_code


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences record line numbers, nested at most MAX_DEPTH deep."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """PyYAML composes (and constructs) nodes recursively: refuse deep nesting before it does."""
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_DEPTH:
            line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]  # unannotated in types-PyYAML
            raise YamlProblem(line, f"lists and mappings are nested more than {MAX_DEPTH} deep",
                              f"at most {MAX_DEPTH} levels of nested lists and mappings", exit_code=2)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _check_expanded(node)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """An explicit tag that does not fit its value (``!!int abc``, ``!!bool maybe``, ``!!seq x``)
        makes PyYAML's constructors raise bare Python errors: report it as a YAML problem at its line."""
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError):
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            shown = (repr(node.value) if isinstance(node, yaml.ScalarNode)
                     else f"a {node.id}" if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) else "a node")
            raise YamlProblem(node.start_mark.line + 1, f"the tag {tag} does not fit the value {shown[:60]}",
                              "plain YAML values (a tag such as !!int must fit its value)") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expanded(root: yaml.Node) -> None:
    """Aliases share nodes, so a small file can stand for an exponential tree ("billion laughs"): a
    recipe that printed or walked it would hang. Count the values and the nesting with every alias
    expanded (each shared node measured once, iteratively), and refuse beyond the limits."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        kids = _children(node)
        if finished:
            open_.discard(key)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = (1 + max((depth[id(k)] for k in kids), default=0)) if not isinstance(node, yaml.ScalarNode) else 0
            line = node.start_mark.line + 1
            if size[key] > MAX_VALUES:
                raise YamlProblem(line, f"with its aliases expanded, the document holds more than {MAX_VALUES:,} values",
                                  f"at most {MAX_VALUES:,} values (aliases counted as copies)", exit_code=2)
            if depth[key] > MAX_DEPTH:
                raise YamlProblem(line, f"with its aliases expanded, lists and mappings are nested more than "
                                  f"{MAX_DEPTH} deep", f"at most {MAX_DEPTH} levels of nested lists and mappings",
                                  exit_code=2)
            continue
        if key in size:
            continue
        if key in open_:
            raise YamlProblem(node.start_mark.line + 1, "an alias refers to the list or mapping that contains it",
                              "aliases to values defined before them")
        open_.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in kids if id(k) not in size)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YMap:
    loader.flatten_mapping(node)
    out = YMap()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            raise YamlProblem(line, "a mapping key must be a plain value, not a list or mapping") from None
        if key in out:
            raise YamlProblem(line, f"duplicate key '{key}' (first written on line {out.key_lines[key]})")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = line
    return out


def _construct_list(loader: _Loader, node: yaml.SequenceNode) -> YList:
    out = YList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> Any:
    """A date-like scalar that is not a real date (2024-13-01) stays a string, so the recipe check
    can say which value is wrong instead of PyYAML raising a bare ValueError."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, AttributeError, OverflowError):  # AttributeError: '!!timestamp x' matches no form
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)


def parse_yaml(text: str, name: str = "<recipe>") -> Any:
    """Parse one YAML document into YMap/YList/scalars.

    Args:
        text: The YAML text.
        name: Used only by PyYAML's own messages.

    Returns:
        The document's value; ``None`` for an empty document.

    Raises:
        YamlProblem: Malformed YAML (with the parser's line), several documents, or a duplicate key.
    """
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise YamlProblem(line, f"malformed YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(1, f"malformed YAML: {str(exc).splitlines()[0]}") from None
    if len(docs) > 1:
        starts = [e.start_mark.line + 1 for e in yaml.parse(text, Loader=yaml.SafeLoader)
                  if isinstance(e, yaml.DocumentStartEvent) and e.start_mark is not None]
        second = starts[1] if len(starts) > 1 else 1
        raise YamlProblem(second, "a recipe file holds one YAML document, found several ('---')")
    return docs[0] if docs else None
