"""The layers, checked on the import graph: the core imports no skill; a skill imports no transport, no web
framework, and no storage internals (the fast path is storage.fast)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imports(folder: str) -> list[tuple[str, int, str]]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found += [(str(path.relative_to(ROOT)), node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(str(path.relative_to(ROOT)), node.lineno, node.module)]
    return found


def offending(folder: str, prefixes: tuple[str, ...]) -> list[str]:
    return [f"{p}:{line}: {name}" for p, line, name in imports(folder)
            if any(name == x or name.startswith(x + ".") for x in prefixes)]


def test_the_core_imports_no_skill():
    assert offending("bot", ("skills",)) == []


def test_storage_imports_neither_skills_nor_the_core():
    assert offending("storage", ("skills", "bot")) == []


def test_skills_import_no_transport_and_no_web_framework():
    assert offending("skills", ("aiohttp", "wechaty", "wechaty_grpc", "grpclib", "bot.transports", "bot.web")) == []


def test_the_check_sees_imports():
    """The walk itself finds imports (so an empty list above means something)."""
    names = {name for _, _, name in imports("bot")}
    assert {"bot.context", "storage.db"} <= names


def test_skills_keep_their_sql_in_their_store():
    """Handlers build no SQL: query builders are imported only by a skill's store (and models, migrations, stats
    and privacy modules, which are storage too); the fast path is storage.fast, never storage.prepared."""
    storage_like = ("store.py", "models.py", "stats.py", "privacy.py", "rollup.py", "windows.py")
    builders = {"select", "update", "insert", "delete", "text", "bindparam", "func"}
    wrong = []
    for path in sorted((ROOT / "skills").rglob("*.py")):
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or node.level:
                continue
            if node.module in ("storage.prepared", "storage.sqlite_inline"):
                wrong.append(f"{rel}:{node.lineno}: {node.module}")
            if node.module == "sqlalchemy" and path.name not in storage_like and "migrations" not in rel.parts \
                    and builders & {a.name for a in node.names}:
                wrong.append(f"{rel}:{node.lineno}: builds SQL outside its store")
    assert wrong == []
