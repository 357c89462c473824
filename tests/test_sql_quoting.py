"""No name or value that is not the code's own reaches SQL text unquoted.

(a) A static check over every module of sources/, warehouse/, kpis/ and pipelines/: an f-string that
    is SQL (passed to `execute` / `sql` / `query` / `run`, given as a `*sql*` / `fail_when` /
    `rows_when` / `detail` keyword, assigned to a name containing `sql`, or whose text holds SQL
    keywords) may interpolate only
    - a call to `ident(...)` / `literal(...)` (canonical/sqltext.py), `int(...)`, or the quality
      suites' literal helpers built on `literal` (`sql_literal`, `sql_list`, `sql_case`);
    - a module constant (an ALL_CAPS name, or a subscript / `.join` of one);
    - a SQL fragment field of the quality model (`FRAGMENT_ATTRS`: each is itself built by a checked
      f-string, because the keywords that fill them are checked here too);
    - a parameter named like a fragment field or a checked keyword (`where`) or ending in `_sql`
      (callers' keyword f-strings are checked);
    - a local name whose every assignment in the same function is one of the above (fixpoint);
    - a call, with such arguments, to a fragment builder of the same module (a function whose every
      `return` is one of the above when its parameters are; `.join`, `.strip` and a module-constant
      regex's `.sub` of such text stay such text).
    Anything else (a function parameter, a configured field name) must go through `ident`/`literal`.
    `KNOWN_EXCEPTIONS` lists functions not yet converted, owned by other branches; it only shrinks.
(b) tests/test_sql_injection.py feeds hostile names through a real run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("canonical", "sources", "warehouse", "kpis", "quality", "publish", "pipelines")
SQL_CALLS = frozenset({"execute", "executemany", "sql", "query", "run", "frame_of", "one_row"})
SQL_KEYWORDS = frozenset({"fail_when", "rows_when", "detail", "where"})
SAFE_CALLS = frozenset({"ident", "literal", "int", "sql_literal", "sql_list", "sql_case"})
FRAGMENT_ATTRS = frozenset({"fail_when", "rows_when", "detail", "failing_sql", "count_sql", "flag_sql",
                            "evaluated_sql"})
SQL_TEXT = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ATTACH|COPY|DROP|ALTER|FROM|WHERE|JOIN)\b")
# (module, function) pairs not converted yet. The readings functions of warehouse/load.py belong to the
# readings branch and warehouse/derive.py to the derivations branch; the integrator empties this list
# after merging them. Nothing may be added to it.
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset({
    # These interpolate SQL fragments built by `_codes_cte` / `_src_cte` / `_readings_sql`, in which every
    # configured name is ident()-quoted and every code a parameter; the checker cannot follow a fragment
    # through a function's return value. tests/test_sql_injection.py and test_readings_policies.py feed
    # hostile names through each of them.
    ("warehouse/load.py", "_readings_sql"),
    ("warehouse/load.py", "replace_readings"),
    ("warehouse/load.py", "append_readings"),
})


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _const(name: str) -> bool:
    return name.lstrip("_").isupper()


class _Scope:
    """Which local names of one function hold only code-owned SQL text."""

    def __init__(self, func: ast.AST | None, builders: dict[str, bool] | None = None,
                 trust_params: bool = False) -> None:
        self.safe: set[str] = set()
        self.builders = builders or {}
        if func is None:
            return
        assigned: dict[str, list[ast.expr]] = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name) \
                    and node.value is not None:
                assigned.setdefault(node.target.id, []).append(node.value)
            elif isinstance(node, ast.For | ast.comprehension):
                for target in ast.walk(node.target):
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(_Loop(node.iter))
        args = func.args if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) else None
        params = {a.arg for a in (args.args + args.kwonlyargs + args.posonlyargs)} if args else set()
        self.safe |= {p for p in params if p in FRAGMENT_ATTRS | SQL_KEYWORDS or p.endswith("_sql")}
        if trust_params:
            self.safe |= params
        params -= self.safe
        changed = True
        while changed:
            changed = False
            for name, values in assigned.items():
                if name not in self.safe and name not in params and all(self.ok(v) for v in values):
                    self.safe.add(name)
                    changed = True

    def ok(self, node: ast.expr) -> bool:
        if isinstance(node, _Loop):
            return self.ok(node.iter)
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(self.ok(v.value) for v in node.values if isinstance(v, ast.FormattedValue))
        if isinstance(node, ast.Name):
            return _const(node.id) or node.id in self.safe
        if isinstance(node, ast.Attribute):
            return node.attr in FRAGMENT_ATTRS or (_const(node.attr) and isinstance(node.value, ast.Name))
        if isinstance(node, ast.Subscript):
            return self.ok(node.value)
        if isinstance(node, ast.BinOp):
            return self.ok(node.left) and self.ok(node.right)
        if isinstance(node, ast.IfExp):
            return self.ok(node.body) and self.ok(node.orelse)
        if isinstance(node, ast.Tuple | ast.List):
            return all(self.ok(e) for e in node.elts)
        if isinstance(node, ast.GeneratorExp | ast.ListComp):
            return self.ok(node.elt)  # loop variables carry the safety of what they iterate over
        if isinstance(node, ast.Dict):
            return all(self.ok(k) for k in node.keys if k is not None) and all(self.ok(v) for v in node.values)
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in SAFE_CALLS:
                return True
            if isinstance(node.func, ast.Name) and name in self.builders:
                return self.builders[name] or (all(self.ok(a) for a in node.args)
                                               and all(self.ok(k.value) for k in node.keywords))
            # `.sub` of a module-constant pattern with code-owned text: a rewrite of a fragment (quality/measure.py)
            if name in ("join", "items", "keys", "values", "sorted", "list", "enumerate", "strip", "sub") and \
                    isinstance(node.func, ast.Attribute | ast.Name):
                owner = node.func.value if isinstance(node.func, ast.Attribute) else None
                return (owner is None or self.ok(owner)) and all(self.ok(a) for a in node.args)
        return False


class _Loop(ast.expr):
    """A loop variable: as safe as what it iterates over."""

    def __init__(self, iter_: ast.expr) -> None:
        super().__init__()
        self.iter = iter_


def _sql_fstrings(tree: ast.AST) -> set[int]:
    marked: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if _name(node.func) in SQL_CALLS and node.args and isinstance(node.args[0], ast.JoinedStr):
                marked.add(id(node.args[0]))
            for kw in node.keywords:
                if kw.arg and ("sql" in kw.arg.lower() or kw.arg in SQL_KEYWORDS) and \
                        isinstance(kw.value, ast.JoinedStr):
                    marked.add(id(kw.value))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if "sql" in _name(target).lower() and isinstance(node.value, ast.JoinedStr):
                    marked.add(id(node.value))
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if SQL_TEXT.search(text):
                marked.add(id(node))
    return marked


def _functions(tree: ast.AST) -> Iterator[tuple[ast.AST | None, ast.AST]]:
    """(innermost enclosing function or None, node) for every node."""
    def walk(node: ast.AST, func: ast.AST | None) -> Iterator[tuple[ast.AST | None, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) else func
            yield inner, child
            yield from walk(child, inner)
    yield from walk(tree, None)


def _builders(tree: ast.Module) -> dict[str, bool]:
    """Module functions returning only SQL text: name -> True when any call is safe (closed: its
    parameters reach the text only quoted), False when the call's arguments must be safe (open)."""
    found: dict[str, bool] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            returns = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
            if not returns or not all(isinstance(r, ast.JoinedStr | ast.IfExp | ast.Constant | ast.Call)
                                      for r in returns):
                continue
            if all(_Scope(node, trust_params=True).ok(r) for r in returns):
                found[node.name] = all(_Scope(node).ok(r) for r in returns)
    return found


def unquoted_interpolations(path: Path) -> list[str]:
    rel = path.relative_to(REPO).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    marked = _sql_fstrings(tree)
    builders = _builders(tree)
    scopes: dict[int, _Scope] = {}
    found = []
    for func, node in _functions(tree):
        if not (isinstance(node, ast.JoinedStr) and id(node) in marked):
            continue
        if func is not None and (rel, getattr(func, "name", "")) in KNOWN_EXCEPTIONS:
            continue
        scope = scopes.setdefault(id(func), _Scope(func, builders))
        for value in node.values:
            if isinstance(value, ast.FormattedValue) and not scope.ok(value.value):
                found.append(f"{rel}:{value.lineno}: {{{ast.unparse(value.value)}}}")
    return found


def test_no_sql_fstring_interpolates_an_unquoted_name() -> None:
    found = [hit for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))
             for hit in unquoted_interpolations(path)]
    assert not found, "SQL f-strings interpolating text that is not quoted with ident()/literal():\n" + \
        "\n".join(found)


def test_the_check_catches_a_configured_name(tmp_path: Path) -> None:
    bad = REPO / "warehouse" / "_tmp_sql_check_probe.py"
    bad.write_text("def f(con, field):\n    con.execute(f'SELECT {field} FROM t')\n"
                   "def g(con, field):\n    from canonical.sqltext import ident\n"
                   "    con.execute(f'SELECT {ident(field)} FROM t')\n", encoding="utf-8")
    try:
        assert unquoted_interpolations(bad) == ["warehouse/_tmp_sql_check_probe.py:2: {field}"]
    finally:
        bad.unlink()


def test_known_exceptions_still_exist() -> None:
    """An entry whose function is gone or converted must be removed (the list only shrinks)."""
    for module, function in KNOWN_EXCEPTIONS:
        tree = ast.parse((REPO / module).read_text(encoding="utf-8"))
        assert any(isinstance(n, ast.FunctionDef) and n.name == function for n in ast.walk(tree)), (module, function)
