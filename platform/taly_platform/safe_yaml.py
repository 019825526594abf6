"""The one way the project reads YAML: untrusted text in, plain data out, or one line saying why not.

Every YAML the project reads (stack files, chart values, health thresholds, the drill spec, the
refresh rules, `helm template` output) goes through here, because `yaml.safe_load` alone is not
safe against what a user can hand it:

- alias expansion bombs: a 2 KB document whose nested aliases expand to millions of nodes (which
  then reach an error message whole). A document's aliases may add at most `ALIAS_BUDGET` nodes to
  it; recursive aliases are refused. Anchors and modest aliases (`<<: *defaults`) still work.
- a directory, a binary or non-UTF-8 file, a FIFO or a huge file: refused before parsing.
- a key given twice in one mapping (YAML would keep the last one without a word).

Errors are `YamlError`s whose text is `file[:line]: problem`, for the caller to turn into its exit code.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, Iterator

import yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it: much faster


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe loading that refuses a mapping key given twice (YAML keeps the last one, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if (key_node.tag, key_node.value) in seen:
                raise _DuplicateKey(key_node)
            seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key_node: yaml.ScalarNode) -> None:
        self.key, self.line = key_node.value, key_node.start_mark.line + 1

ALIAS_BUDGET = 10_000  # nodes that aliases may add to a document beyond its own
MAX_BYTES = 8 * 1024 * 1024  # far above any config file the project reads


class YamlError(ValueError):
    """A YAML file or text that cannot be read as data; `str()` is `source[:line]: problem`."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        super().__init__(f"{source}{f':{line}' if line else ''}: {problem}")
        self.source, self.problem, self.line = source, problem, line


def read_text(path: Path, shown: str | None = None) -> str:
    """The file's text, or a YamlError naming it and saying what it is instead (missing, a directory, binary)."""
    name = shown or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise YamlError(name, "no such file") from None
    except OSError as exc:
        raise YamlError(name, f"cannot read it: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise YamlError(name, "is a directory, not a YAML file")
    if not stat.S_ISREG(st.st_mode):
        raise YamlError(name, "is not a regular file (a FIFO, socket or device); give a YAML file")
    if st.st_size > MAX_BYTES:
        raise YamlError(name, f"is {st.st_size} bytes; a YAML file here is at most {MAX_BYTES}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise YamlError(name, f"cannot read it: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise YamlError(name, "is a binary file (it holds NUL bytes), not YAML text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlError(name, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})", line) from None


def load_file(path: Path, shown: str | None = None) -> Any:
    """The one document in a YAML file (None when it is empty)."""
    name = shown or str(path)
    return loads(read_text(path, name), name)


def loads(text: str, source: str) -> Any:
    """The one document in `text` (None when empty); `source` names it in errors."""
    return parse(text, source)[0]


def parse(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The one document in `text` and its node tree (for line numbers of keys); (None, None) when empty."""
    docs = list(_documents(text, source))
    if len(docs) > 1:
        raise YamlError(source, "holds more than one YAML document (---); expected one", _line(docs[1][1]))
    return docs[0] if docs else (None, None)


def loads_all(text: str, source: str) -> list[Any]:
    """Every document in a multi-document stream, in order."""
    return [doc for doc, _ in _documents(text, source)]


def _documents(text: str, source: str) -> Iterator[tuple[Any, yaml.Node]]:
    anchors = "&" in text  # without an anchor there is no alias, so nothing to expand
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if anchors:
                _check_expansion(node, source)
            yield loader.construct_document(node), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlError(source, f"broken YAML: {problem}", mark.line + 1 if mark else None) from None
    except _DuplicateKey as exc:
        raise YamlError(source, f"key {exc.key!r} is given twice in one mapping", exc.line) from None
    except RecursionError:
        raise YamlError(source, "nested too deeply to be a configuration") from None
    finally:
        loader.dispose()


def _line(node: yaml.Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand it past the budget, or refer back to themselves."""
    sizes: dict[int, int] = {}  # expanded size per distinct node
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise YamlError(source, "an alias refers to a node that contains it (recursive aliases are refused)",
                            _line(node))
        open_nodes.add(key)
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        open_nodes.discard(key)
        sizes[key] = total
        return total

    expanded = size(root)
    if expanded - len(sizes) > ALIAS_BUDGET:
        raise YamlError(source, f"its aliases expand it to {expanded} nodes from {len(sizes)} written "
                                f"(at most {ALIAS_BUDGET} more are allowed): refused as an alias expansion bomb",
                        _line(root))
