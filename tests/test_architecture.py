"""What may import what inside the app (docs/architecture.md): the layering holds as the code changes.

Each part of ``chat`` (a subpackage, or a module at its top) lists the other parts it may import. A new import
across parts either fits the map or changes the map, here and in docs/architecture.md, in the same commit.
"""

import ast
from pathlib import Path

import pytest

CHAT = Path(__file__).resolve().parent.parent / "chat"

MAY_IMPORT = {
    "chat.tree": set(),
    "chat.redis_pools": set(),
    "chat.logs": set(),
    "chat.rendering": set(),
    "chat.models": {"chat.tree"},
    "chat.ownership": {"chat.models"},
    "chat.search": {"chat.models"},
    "chat.inference": {"chat.redis_pools"},
    # The demo model recognises the app's title request by its words, kept in a module that imports nothing.
    "chat.standin": {"chat.turns.title_prompt"},
    "chat.live": {"chat.rendering", "chat.logs"},
    "chat.uploads": {"chat.models"},
    "chat.transfer": {"chat.models", "chat.tree"},
    "chat.turns": {"chat.models", "chat.tree", "chat.inference", "chat.live", "chat.rendering", "chat.search",
                   "chat.uploads", "chat.logs"},
    "chat.socket": {"chat.models", "chat.ownership", "chat.live", "chat.turns", "chat.uploads", "chat.logs"},
    "chat.web": {"chat.models", "chat.ownership", "chat.search", "chat.live", "chat.turns", "chat.uploads",
                 "chat.transfer", "chat.logs"},
    "chat.review": {"chat.models", "chat.rendering", "chat.transfer"},
    "chat.admin": {"chat.models", "chat.review"},
    "chat.apps": {"chat.uploads"},
    "chat.urls": {"chat.web"},
    "chat.routing": {"chat.socket"},
    "chat.templatetags": {"chat.rendering"},
    "chat.management": {"chat.standin", "chat.uploads"},
}


def part_of(module):
    """``chat.turns.records`` → ``chat.turns``; ``chat.models`` → ``chat.models``."""
    return ".".join(module.split(".")[:2])


def modules():
    for path in sorted(CHAT.rglob("*.py")):
        if "migrations" not in path.parts:
            yield ".".join(("chat", *path.relative_to(CHAT).with_suffix("").parts)).removesuffix(".__init__"), path


def app_imports(path):
    """The ``chat.…`` modules a file imports, wherever the import statement sits."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("chat"):
            if node.module == "chat":
                yield from (f"chat.{alias.name}" for alias in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.startswith("chat."))


def allowed(importer, imported):
    own, target = part_of(importer), part_of(imported)
    if own == target:
        return True
    permitted = MAY_IMPORT[own]
    return target in permitted or imported in permitted


@pytest.mark.parametrize("module, path", list(modules()), ids=lambda value: value if isinstance(value, str) else "")
def test_imports_follow_the_map(module, path):
    if module == "chat":
        return
    assert part_of(module) in MAY_IMPORT, f"{module} is in no part of docs/architecture.md's map"
    wrong = sorted({imported for imported in app_imports(path) if not allowed(module, imported)})
    assert wrong == [], f"{module} imports {wrong}, which its part may not (docs/architecture.md)"


def test_no_relative_imports_across_the_app():
    relative = [path.name for _, path in modules()
                if any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(ast.parse(path.read_text())))]
    assert relative == []


def test_the_check_sees_a_wrong_import():
    assert not allowed("chat.live.hub", "chat.models")
    assert not allowed("chat.web.pages", "chat.inference")
    assert allowed("chat.turns.turn", "chat.inference")
    assert allowed("chat.standin.replies", "chat.turns.title_prompt")
    assert not allowed("chat.standin.replies", "chat.turns.records")
