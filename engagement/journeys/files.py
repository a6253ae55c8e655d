"""Read YAML and TOML journey files, keeping the line of every key for error messages."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engagement import errors
from engagement.errors import Problem

Loc = tuple[str | int, ...]
SUFFIXES = (".yaml", ".yml", ".toml")
MAX_NESTING = 64  # mappings and lists inside each other in one file
MAX_VALUES = 20_000  # values in a YAML file once its aliases are expanded (a large journey has a few hundred)


@dataclass
class SourceFile:
    """A parsed journey file and where each of its keys stands."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest located parent."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None


def read(path: Path) -> SourceFile | Problem:
    """Parse one file; a syntax error comes back as a Problem with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Problem(str(path), None, "", f"cannot read: {exc}")
    if path.suffix == ".toml":
        return _read_toml(path, text)
    return _read_yaml(path, text)


class _Refused(yaml.MarkedYAMLError, errors.EngagementError):
    """A file this loader will not read: too many values once aliases are expanded, or nested too deep."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with bounds on what a file expands to: anchors and aliases may reuse a value,
    but every reader after this one walks the expanded tree, so a few hundred bytes of aliases must not
    stand for millions of values (MAX_VALUES) or for nesting beyond MAX_NESTING (the composer, and
    everything after it, recurses once per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.values = 0
        self.sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels) once it is complete

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self.sizes.get(id(node))
            if size is None:
                raise _Refused(problem="an alias inside the value it names", problem_mark=mark)
            self._count(size[0], self.depth + size[1], mark)
            return node
        self.depth += 1
        try:
            self._count(1, self.depth, mark)
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        assert node is not None
        self.sizes[id(node)] = _size(node, self.sizes)
        return node

    def _count(self, values: int, depth: int, mark: Any) -> None:
        self.values += values
        if self.values > MAX_VALUES:
            raise _Refused(
                problem=f"more than {MAX_VALUES} values once aliases are expanded", problem_mark=mark
            )
        if depth > MAX_NESTING:
            raise _Refused(problem=f"nested more than {MAX_NESTING} levels deep", problem_mark=mark)


def _size(node: yaml.Node, sizes: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(values, levels) of a just-composed node as readers see it, its children's sizes being known."""
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        return 1, 1
    known = [sizes[id(child)] for child in children]
    return 1 + sum(v for v, _ in known), 1 + max((d for _, d in known), default=0)


def _read_yaml(path: Path, text: str) -> SourceFile | Problem:
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except _Refused as exc:
        mark = exc.problem_mark
        return Problem(str(path), mark.line + 1 if mark else None, "", str(exc.problem))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        return Problem(str(path), line, "", f"YAML syntax: {exc.problem or exc}")
    except yaml.YAMLError as exc:
        return Problem(str(path), None, "", f"YAML syntax: {exc}")
    source = SourceFile(path, data)
    if node is not None:
        duplicate = _index_yaml(node, (), source.lines)
        if duplicate:
            loc, line = duplicate
            return Problem(str(path), line, format_loc(loc), "duplicate key")
        source.lines[()] = node.start_mark.line + 1
    return source


def _index_yaml(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> tuple[Loc, int] | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = loc + (key,)
            if key in seen:
                return child, key_node.start_mark.line + 1
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            found = _index_yaml(value_node, child, lines)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            found = _index_yaml(item, loc + (i,), lines)
            if found:
                return found
    return None


_TOML_LINE = re.compile(r"\(at line (\d+)")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r'^\s*((?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|\'[^\']*\'|[A-Za-z0-9_-]+))*)\s*='
)


def _read_toml(path: Path, text: str) -> SourceFile | Problem:
    too_deep = _toml_nesting(text)
    if too_deep is not None:
        return Problem(str(path), too_deep, "", f"nested more than {MAX_NESTING} levels deep")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        return Problem(str(path), int(match.group(1)) if match else None, "", f"TOML syntax: {exc}")
    return SourceFile(path, data, _index_toml(text))


_TOML_TOKEN = re.compile(
    r'"""(?:[^\\]|\\.)*?"""|\'\'\'.*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#[^\n]*|[\[\]{}\n]', re.S
)


def _toml_nesting(text: str) -> int | None:
    """The line where inline tables and arrays first nest deeper than MAX_NESTING (tomllib recurses per
    level), or None. Strings and comments are skipped, so brackets inside them do not count."""
    depth, line = 0, 1
    for token in _TOML_TOKEN.finditer(text):
        value = token.group()
        if value in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line
        elif value in "]}":
            depth = max(0, depth - 1)
        line += value.count("\n")
    return None


def _split_key(text: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+)', text)
    return [a or b or c for a, b, c in parts]


def _index_toml(text: str) -> dict[Loc, int]:
    """Best-effort key → line map: tables, arrays of tables, keys and multi-line array items."""
    lines: dict[Loc, int] = {(): 1}
    table: Loc = ()
    counts: dict[Loc, int] = {}
    array: Loc | None = None
    item = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip() if '"' not in raw and "'" not in raw else raw.rstrip()
        if not line.strip():
            continue
        header = _HEADER.match(line)
        if header and array is None:
            key = _in_last_items(tuple(_split_key(header.group(2))), counts)
            if header.group(1) == "[[":
                index = counts.get(key, -1) + 1
                counts[key] = index
                table = key + (index,)
            else:
                table = key
            lines.setdefault(table, number)
            continue
        if array is not None:
            if line.strip().startswith("]"):
                array = None
                continue
            lines.setdefault(array + (item,), number)
            item += 1
            continue
        key_match = _KEY.match(line)
        if key_match:
            loc = table + tuple(_split_key(key_match.group(1)))
            lines.setdefault(loc, number)
            rest = line[key_match.end() :].strip()
            if rest == "[" or (rest.startswith("[") and not rest.endswith("]")):
                array, item = loc, 0
    return lines


def _in_last_items(key: Loc, counts: dict[Loc, int]) -> Loc:
    """`[steps.branch]` after the second `[[steps]]` is `steps[1].branch`: a header names the last item."""
    resolved: Loc = ()
    for part in key[:-1]:
        resolved += (part,)
        if resolved in counts:
            resolved += (counts[resolved],)
    return resolved + key[-1:]


def format_loc(loc: Loc) -> str:
    """`('steps', 2, 'email', 'template')` as `steps[2].email.template`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def journey_paths(targets: list[Path]) -> list[Path]:
    """Every journey file under the given files and folders, sorted."""
    found: list[Path] = []
    for target in targets:
        if target.is_dir():
            found.extend(p for p in sorted(target.rglob("*")) if p.suffix in SUFFIXES and p.is_file())
        else:
            found.append(target)
    return found
