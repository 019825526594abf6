"""The one YAML loader: data from text or a file, or one line naming the file, the line and the problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taly_platform.safe_yaml import ALIAS_BUDGET, YamlError, load_file, loads, loads_all, parse


def test_plain_documents_load_as_with_safe_load(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: 1\nb: [x, y]\nc: {d: true}\n")
    assert load_file(path) == {"a": 1, "b": ["x", "y"], "c": {"d": True}}
    assert loads("", "empty") is None
    assert loads_all("a: 1\n---\n---\nb: 2\n", "stream") == [{"a": 1}, None, {"b": 2}]


def test_modest_aliases_and_merge_keys_still_work() -> None:
    text = "defaults: &d {cpu: 100m, memory: 128Mi}\napi: {<<: *d, cpu: 250m}\nworker: *d\n"
    assert loads(text, "t") == {"defaults": {"cpu": "100m", "memory": "128Mi"},
                                "api": {"cpu": "250m", "memory": "128Mi"}, "worker": {"cpu": "100m", "memory": "128Mi"}}


def test_alias_expansion_bomb_is_refused() -> None:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 5)]
    # Four levels expand to ~66,000 nodes: past the budget, though the text is a few hundred bytes.
    with pytest.raises(YamlError, match=r"^bomb.yaml:1: its aliases expand it to \d+ nodes .*alias expansion bomb"):
        loads("\n".join(lines), "bomb.yaml")
    # Three levels (~7,300 nodes) are within the budget.
    assert len(loads("\n".join(lines[:4]), "ok.yaml")["l3"]) == 9
    assert ALIAS_BUDGET < 66_000


def test_bomb_in_a_later_document_of_a_stream_is_refused() -> None:
    bomb = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x, x]"] +
                     [f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 1 else f'b{i - 1}'}"] * 10) + "]" for i in range(1, 6)])
    with pytest.raises(YamlError, match="alias expansion bomb"):
        loads_all("ok: 1\n---\n" + bomb, "helm template x")


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(YamlError, match=r"^r.yaml:1: an alias refers to a node that contains it"):
        loads("&a [1, *a]\n", "r.yaml")


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(YamlError) as err:
        loads("a: 1\nb: [2\nc: 3\n", "f.yaml")
    assert str(err.value).startswith("f.yaml:") and "broken YAML" in str(err.value)
    assert err.value.line is not None and err.value.line >= 2


def test_two_documents_where_one_is_expected() -> None:
    with pytest.raises(YamlError, match=r"^f.yaml:3: holds more than one YAML document"):
        loads("a: 1\n---\nb: 2\n", "f.yaml")


def test_parse_returns_the_node_tree_for_line_numbers() -> None:
    doc, node = parse("a:\n  b: 1\n", "f")
    assert doc == {"a": {"b": 1}} and node.value[0][1].value[0][0].start_mark.line == 1
    assert parse("", "f") == (None, None)


@pytest.mark.parametrize("content, problem", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file (it holds NUL bytes), not YAML text"),
    (b"a: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 6)"),
])
def test_binary_and_undecodable_files(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(content)
    with pytest.raises(YamlError) as err:
        load_file(path, "x.yaml")
    assert err.value.problem == problem and str(err.value).startswith("x.yaml")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffa: é\n".encode("utf-8"))
    assert load_file(path) == {"a": "é"}


def test_directory_missing_file_and_fifo(tmp_path: Path) -> None:
    with pytest.raises(YamlError, match=r"d: is a directory, not a YAML file$"):
        load_file(tmp_path, "d")
    with pytest.raises(YamlError, match=r"^nope.yaml: no such file$"):
        load_file(tmp_path / "nope.yaml", "nope.yaml")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(YamlError, match="not a regular file"):
        load_file(fifo)  # must not block reading it


def test_deep_nesting_is_one_line_not_a_crash() -> None:
    with pytest.raises(YamlError, match="nested too deeply|broken YAML"):
        loads("[" * 100_000 + "]" * 100_000, "deep.yaml")


def test_a_key_given_twice_is_refused_but_merge_keys_may_be_overridden() -> None:
    with pytest.raises(YamlError, match=r"^f.yaml:3: key 'a' is given twice in one mapping$"):
        loads("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert loads("d: &d {a: 1}\ne: {<<: *d, a: 2}\n", "f") == {"d": {"a": 1}, "e": {"a": 2}}


def test_no_module_reads_yaml_around_the_safe_loader(project_root: Path) -> None:
    """Every YAML the project reads goes through taly_platform.safe_yaml (bombs, binary files, duplicate keys)."""
    import ast

    loaders = {"load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all", "full_load_all",
               "unsafe_load_all", "compose", "compose_all"}
    offenders = []
    for folder in ("platform", "cli", "policy"):
        for path in (project_root / folder).rglob("*.py"):
            if path.name == "safe_yaml.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Attribute) and node.attr in loaders and isinstance(node.value, ast.Name)
                        and node.value.id == "yaml"):
                    offenders.append(f"{path.relative_to(project_root)}:{node.lineno}")
    assert offenders == []
