"""Helm, run as the real binary: render (`helm template`) and lint (`helm lint --strict`) charts.

helm is found on PATH or in the project's tool dir (`.tools/bin`, filled by
`scripts/install-helm`). Values go to helm as a temporary YAML file, never as `--set` strings,
so types survive (a tag "1.10" stays a string, a replica count stays a number).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import yaml
from taly_platform.safe_yaml import YamlError, loads_all

from ..errors import BadInput, Unreachable

INSTALL_HINT = "run scripts/install-helm (or make setup) to put helm into .tools/bin"
TIMEOUT_SECONDS = 120


class HelmFailed(BadInput):
    """helm refused the chart or its values (schema violation, `fail` in a template, lint error)."""

    def __init__(self, message: str, stderr: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.stderr = stderr

    def __reduce__(self):
        """Pickled whole, so a plan worker's chart error reaches the CLI as itself (exit 2, helm's words)."""
        return type(self), (self.message, self.stderr, self.hint)


CHECKOUT_TOOLS = Path(__file__).resolve().parents[3] / ".tools" / "bin"


def _tool_dirs() -> list[Path]:
    """The project's tool dir, and this checkout's (they differ when TALY_PROJECT_ROOT points elsewhere)."""
    from ..project import project_root

    dirs = []
    try:
        dirs.append(project_root() / ".tools" / "bin")
    except BadInput:
        pass
    return dirs + ([CHECKOUT_TOOLS] if CHECKOUT_TOOLS not in dirs else [])


def helm_binary() -> str:
    """Path of the helm binary: PATH first, then the project's .tools/bin."""
    if found := shutil.which("helm"):
        return found
    for folder in _tool_dirs():
        candidate = folder / "helm"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BadInput("helm is not installed (not on PATH, not in .tools/bin)", hint=INSTALL_HINT)


# helm runs for some 50 ms and exits: Go's garbage collector would spend a fifth of its CPU freeing
# what the exit frees anyway (30 renders of a plan: 1.6 s of CPU with it, 1.3 s without). The
# memory limit keeps a collector for a chart far larger than ours. A GOGC of the caller's wins.
GO_RUNTIME = {"GOGC": "off", "GOMEMLIMIT": "512MiB"}


def _run(args: list[str], what: str, gate: AbstractContextManager[Any] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        with gate or nullcontext():
            proc = subprocess.run(
                [helm_binary(), *args], capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                env={**GO_RUNTIME, **os.environ, "HELM_NO_PLUGINS": "1"},
            )
    except subprocess.TimeoutExpired:
        raise Unreachable(f"{what}: helm did not finish within {TIMEOUT_SECONDS} s") from None
    except OSError as exc:
        raise BadInput(f"{what}: cannot run helm ({exc})", hint=INSTALL_HINT) from None
    return proc


def _values_args(folder: Path, values: Mapping[str, Any] | None, value_files: Iterable[str | Path]) -> list[str]:
    args: list[str] = []
    for f in value_files:
        args += ["--values", str(f)]
    if values:
        path = folder / "values.yaml"
        path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
        args += ["--values", str(path)]
    return args


def _report(proc: subprocess.CompletedProcess[str], *, with_stdout: bool = False) -> str:
    text = (proc.stderr or "").strip()
    if with_stdout or not text:
        text = ((proc.stdout or "").strip() + "\n" + text).strip()
    # helm's generic suffix adds nothing for our users.
    return "\n".join(line for line in text.splitlines() if "Use --debug flag" not in line).strip()


def template(
    chart_dir: str | Path,
    release: str,
    namespace: str,
    values: Mapping[str, Any] | None = None,
    *,
    value_files: Iterable[str | Path] = (),
    kube_version: str | None = None,
    gate: AbstractContextManager[Any] | None = None,
) -> list[dict[str, Any]]:
    """`helm template` the chart; the manifests as dicts (empty documents dropped).

    `value_files` are applied first, in order, then `values` (which wins). `gate` is held while
    helm runs, and only then: a caller's limit on how many run at once.
    """
    chart = Path(chart_dir)
    if not (chart / "Chart.yaml").is_file():
        raise BadInput(f"{chart} is not a Helm chart (no Chart.yaml)")
    with tempfile.TemporaryDirectory(prefix="taly-helm-") as tmp:
        args = ["template", release, str(chart), "--namespace", namespace]
        if kube_version:
            args += ["--kube-version", kube_version]
        args += _values_args(Path(tmp), values, value_files)
        proc = _run(args, f"helm template {release}", gate)
    if proc.returncode != 0:
        err = _report(proc)
        raise HelmFailed(f"helm template {release} ({chart.name}) failed:\n{err}", err)
    try:
        docs = loads_all(proc.stdout, f"helm template {release}")
    except YamlError as exc:
        raise HelmFailed(f"helm template {release} ({chart.name}) printed invalid YAML: {exc}", str(exc)) from None
    return [d for d in docs if d]


def lint(
    chart_dir: str | Path,
    values: Mapping[str, Any] | None = None,
    *,
    value_files: Iterable[str | Path] = (),
    strict: bool = True,
    namespace: str | None = None,
) -> str:
    """`helm lint [--strict]` the chart with these values; helm's report, or HelmFailed."""
    chart = Path(chart_dir)
    with tempfile.TemporaryDirectory(prefix="taly-helm-") as tmp:
        args = ["lint", str(chart)]
        if strict:
            args.append("--strict")
        if namespace:
            args += ["--namespace", namespace]
        args += _values_args(Path(tmp), values, value_files)
        proc = _run(args, f"helm lint {chart.name}")
    if proc.returncode != 0:
        err = _report(proc, with_stdout=True)
        raise HelmFailed(f"helm lint {chart.name} failed:\n{err}", err)
    return proc.stdout
