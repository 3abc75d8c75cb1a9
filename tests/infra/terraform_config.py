"""infra/terraform parsed with `hcl2` for the offline checks: no provider, no network.

Two distributions install a top-level `hcl2` package and shape their output differently:
python-hcl2 (>= 5) keeps the quotes of string literals and marks blocks with `__is_block__`;
bc-python-hcl2 (the fork checkov pins) wraps every attribute value in a one-element list. The
tests read the parsed files only through `attr()` and `blocks()` below, which accept both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import hcl2
except ImportError as exc:  # pragma: no cover - environment problem, not a test outcome
    raise ImportError(
        "tests/infra parse Terraform with the `hcl2` package (bc-python-hcl2, pinned by checkov, or "
        "python-hcl2): run `uv sync --all-groups`"
    ) from exc

TERRAFORM_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"

# bc-python-hcl2 exports the line-number keys it adds; python-hcl2 does not.
_WRAPPED_ATTRIBUTES = hasattr(hcl2, "START_LINE")
_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__", "__start_line__", "__end_line__"}
# Labels each top-level block kind carries before its body (`resource "type" "name" { ... }`).
_LABEL_COUNT = {"resource": 2, "data": 2, "module": 1, "variable": 1, "output": 1, "provider": 1}
_MISSING = object()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def _normalize(node: Any) -> Any:
    """Drop parser metadata and the quotes python-hcl2 keeps around string literals and labels."""
    if isinstance(node, dict):
        return {_unquote(key): _normalize(value) for key, value in node.items() if key not in _META_KEYS}
    if isinstance(node, list):
        return [_normalize(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def attr(body: dict[str, Any], name: str, default: Any = _MISSING) -> Any:
    """The value of attribute `name` of a block body (or of a .tfvars file)."""
    if name not in body:
        if default is _MISSING:
            raise KeyError(f"attribute {name!r} not set")
        return default
    value = body[name]
    if _WRAPPED_ATTRIBUTES and isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def blocks(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The nested blocks called `name` of a block body (`ingress { ... }` twice -> two bodies)."""
    found = body.get(name, [])
    return found if isinstance(found, list) else [found]


def text(value: Any) -> str:
    """A value or expression as one string, for looking for names and references in it."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def references(value: Any, pattern: str) -> bool:
    """True when the expression mentions `pattern` (a regex over the expression's text)."""
    return re.search(pattern, text(value)) is not None


@dataclass(frozen=True)
class Block:
    kind: str  # resource, data, module, variable, output, provider, locals, terraform
    labels: tuple[str, ...]
    body: dict[str, Any]
    module: str  # "." for the root module, else "modules/<name>"
    file: str

    @property
    def address(self) -> str:
        where = "" if self.module == "." else f"{self.module}: "
        return where + ".".join((self.kind, *self.labels) if self.kind != "resource" else self.labels)


class Configuration:
    """Every block of every .tf file under infra/terraform, and the .tfvars files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blocks: list[Block] = []
        for path in sorted(root.rglob("*.tf")):
            if ".terraform" in path.parts:
                continue
            module = path.parent.relative_to(root).as_posix()
            parsed = _normalize(hcl2.loads(path.read_text()))
            for kind, items in parsed.items():
                for item in items:
                    for labels, body in _unlabel(item, _LABEL_COUNT.get(kind, 0)):
                        self.blocks.append(
                            Block(kind, labels, body, module, path.relative_to(root).as_posix())
                        )

    def of(self, kind: str, *labels: str, module: str | None = None) -> list[Block]:
        return [
            block
            for block in self.blocks
            if block.kind == kind
            and block.labels[: len(labels)] == labels
            and (module is None or block.module == module)
        ]

    def resources(self, resource_type: str, module: str | None = None) -> list[Block]:
        return self.of("resource", resource_type, module=module)

    def module_calls(self, source: str | None = None) -> dict[str, Block]:
        """Root module calls by name, optionally only those of one child module (`./modules/x`)."""
        return {
            block.labels[0]: block
            for block in self.of("module", module=".")
            if source is None or attr(block.body, "source") == source
        }

    def variables(self, module: str = ".") -> dict[str, Block]:
        return {block.labels[0]: block for block in self.of("variable", module=module)}

    def tfvars(self, name: str) -> dict[str, Any]:
        parsed = _normalize(hcl2.loads((self.root / "environments" / f"{name}.tfvars").read_text()))
        return {key: attr(parsed, key) for key in parsed}


def _unlabel(item: dict[str, Any], count: int) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    if count == 0:
        return [((), item)]
    return [
        ((label, *rest), body) for label, inner in item.items() for rest, body in _unlabel(inner, count - 1)
    ]
