"""The message ids the code uses: every literal first argument of ``t``, ``tn`` and ``N_``.

Read from the source with ``ast`` (no import, so a module's side effects never run). The
catalogue test compares these with the ``.po`` files; ``scripts/i18n.py update`` adds new ids
to them and drops stale ones.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where user-facing text lives: the library and the app (the CLI's own text stays English).
SOURCES = ("nnviz", "ui", "pages", "app.py")
SKIP = ("nnviz/cli",)


@dataclass(frozen=True)
class Message:
    msgid: str
    plural: str | None
    where: str                      # "path:line", for the translator's reference comment
    domain: str                     # "app" (ui/, pages/, app.py) or "library" (nnviz/)


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for name in SOURCES:
        path = root / name
        out.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return [p for p in out if not any(p.relative_to(root).as_posix().startswith(s) for s in SKIP)]


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def messages(root: Path = ROOT) -> list[Message]:
    """Every translatable message in the source tree, in file order (duplicates kept)."""
    found: list[Message] = []
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        domain = "library" if rel.startswith("nnviz/") else "app"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else (
                func.attr if isinstance(func, ast.Attribute) else None)
            if name not in ("t", "tn", "N_"):
                continue
            first = _literal(node.args[0])
            if first is None:
                continue
            plural = _literal(node.args[1]) if name == "tn" and len(node.args) > 1 else None
            found.append(Message(first, plural, f"{rel}:{node.lineno}", domain))
    return found


def dynamic_calls(root: Path = ROOT) -> list[str]:
    """``t(x)`` calls whose first argument is not a literal: allowed only for ``N_`` constants."""
    out: list[str] = []
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("t", "tn") and node.args
                    and _literal(node.args[0]) is None):
                out.append(f"{rel}:{node.lineno}")
    return out
