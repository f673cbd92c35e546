"""Static check that SQL text is built from literals only, so values can only be parameters.

Follows, within a module, how each piece of SQL text is made: string literals; f-strings,
``+``, ``%`` and ``.format`` of such pieces; ``"?" * n`` placeholders; ``", ".join(...)`` of
literal pieces; names whose every assignment (in the function, then the module) is such a
piece, including ``+=``, list ``.append``, ``for`` targets over literal tuples, values
returned by a function of the module, and names imported from another promptrun module.
Anything else (a parameter, an attribute of an object, a call result) is a value, and a
value in SQL text is reported with its file and line.

Numbers are safe too: ``len(...)``, ``range``/``enumerate`` counters and arithmetic on them,
as PostgreSQL's ``$n`` placeholders are numbered.

The store's dialect hooks (``d.hook`` where ``d`` is a parameter annotated ``Dialect``) are
followed into every dialect module: an attribute is trusted when each dialect binds it to
trusted text, a method call when its arguments are trusted and each dialect's method returns
trusted text given trusted parameters. So a hook cannot carry a value into SQL either.

Checked: the first argument of every ``execute``, ``executemany``, ``executescript``,
``fetch``, ``fetchval``, ``fetchrow``, ``cursor`` and ``Query`` call (a method, or a function
such as the store's ``yield from fetch(...)``) in a module that imports a database driver or
lives in a ``store`` package, and every f-string, ``%`` or ``.format`` whose literal text reads
as SQL in any module. A function named like one of those that hands its own first parameter
on (the store's ``fetch`` making a ``Query``) is checked where it is called instead; so is
the text a dialect hook returns.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Finding", "check_file", "check_tree"]

_SQL = re.compile(
    r"\b(SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|WHERE|JOIN|ORDER\s+BY|"
    r"GROUP\s+BY|VALUES|CREATE\s+TABLE|PRAGMA)\b"
)
# sqlite3's and asyncpg's ways to run SQL text, and the store's (queries/_sql.py).
_EXECUTE = frozenset(
    {"execute", "executemany", "executescript", "fetch", "fetchval", "fetchrow", "cursor", "Query"}
)
_DRIVERS = frozenset({"sqlite3", "asyncpg", "psycopg", "psycopg2", "aiosqlite"})
_PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "runtime"
# Where the store's Dialect implementations live: every hook is checked in each of them.
_DIALECT_TYPE = "Dialect"
_DIALECT_MODULES = (
    "promptrun.server.store.queries.sqlite",
    "promptrun.server.store.queries.postgres",
)


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    code: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.code}"


def _literal_text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_literal_text(v) for v in node.values)
    return ""


@dataclass
class _Module:
    """One module's bindings: where each name is assigned, per function and at top level."""

    path: Path
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    imports: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (node.module, alias.name)

    def scope_of(self, node: ast.AST) -> ast.AST:
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                return node
        return self.tree

    def function(self, name: str) -> ast.FunctionDef | None:
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return node
        return None


def _walk_scope(scope: ast.AST) -> list[ast.AST]:
    """The scope's nodes, nested functions and classes left out (they are scopes of their own)."""
    out: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        out.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))
    return out


class _Checker:
    def __init__(self, module: _Module) -> None:
        self.module = module
        self._visiting: set[tuple[int, str]] = set()
        self._others: dict[str, _Checker] = {}
        # Functions whose parameters count as trusted: a dialect hook being checked for what
        # it returns (its arguments are checked at each call).
        self._trusted_parameters: set[int] = set()

    # -- dialect hooks --------------------------------------------------------------------
    def _is_dialect(self, node: ast.Name) -> bool:
        """Whether the name is a parameter annotated as the store's Dialect."""
        for binding in self._bindings(self.module.scope_of(node), node.id):
            kind, arg = binding[0], binding[1]
            if kind == "parameter" and isinstance(arg, ast.arg):
                annotation = arg.annotation
                return (isinstance(annotation, ast.Name) and annotation.id == _DIALECT_TYPE) or (
                    isinstance(annotation, ast.Constant) and annotation.value == _DIALECT_TYPE
                )
        return False

    def _dialect_classes(self) -> list[tuple[_Checker, list[ast.ClassDef]]]:
        found = []
        for dotted in _DIALECT_MODULES:
            other = self._other(dotted)
            if other is None:
                return []
            classes = [n for n in other.module.tree.body if isinstance(n, ast.ClassDef)]
            found.append((other, classes))
        return found

    def _dialect_attribute_trusted(self, name: str) -> bool:
        modules = self._dialect_classes()
        for checker, classes in modules:
            values = [
                node.value
                for cls in classes
                for node in cls.body
                if isinstance(node, ast.Assign | ast.AnnAssign)
                and node.value is not None
                and any(
                    _is_name(t, name)
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                )
            ]
            if not values or not all(checker.trusted(v) for v in values):
                return False
        return bool(modules)

    def _dialect_method_trusted(self, name: str) -> bool:
        modules = self._dialect_classes()
        for checker, classes in modules:
            methods = [
                node
                for cls in classes
                for node in cls.body
                if isinstance(node, ast.FunctionDef) and node.name == name
            ]
            if not methods or not all(checker.returns_trusted(m) for m in methods):
                return False
        return bool(modules)

    def returns_trusted(self, function: ast.FunctionDef) -> bool:
        """Whether everything ``function`` returns is trusted text, given trusted arguments."""
        returns = [n for n in _walk_scope(function) if isinstance(n, ast.Return)]
        self._trusted_parameters.add(id(function))
        try:
            return bool(returns) and all(
                n.value is not None and self.trusted(n.value) for n in returns
            )
        finally:
            self._trusted_parameters.discard(id(function))

    # -- names ----------------------------------------------------------------------------
    def _other(self, dotted: str) -> _Checker | None:
        if not dotted.startswith("promptrun"):
            return None
        if dotted not in self._others:
            base = _PACKAGE_ROOT / Path(*dotted.split("."))
            path = base.with_suffix(".py") if base.with_suffix(".py").exists() else None
            if path is None:
                return None
            self._others[dotted] = _Checker(_Module(path, ast.parse(path.read_text())))
        return self._others[dotted]

    def _bindings(self, scope: ast.AST, name: str) -> list[tuple[str, ast.AST, ast.AST]]:
        """How ``name`` gets values in ``scope``: (kind, node, value-or-iterable)."""
        found: list[tuple[str, ast.AST, ast.AST]] = []
        for node in _walk_scope(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    found += self._target(target, name, node.value, "assign")
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                found += self._target(node.target, name, node.value, "assign")
            elif isinstance(node, ast.AugAssign) and _is_name(node.target, name):
                found.append(("augment", node, node.value))
            elif isinstance(node, ast.For | ast.comprehension):
                found += self._target(node.target, name, node.iter, "iterate")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("append", "extend", "insert")
                and _is_name(node.func.value, name)
            ):
                kind = "extend" if node.func.attr == "extend" else "append"
                found += [(kind, node, arg) for arg in node.args[-1:]]
            elif isinstance(node, ast.arg) and node.arg == name:
                found.append(("parameter", node, node))
        return found

    @staticmethod
    def _target(target: ast.AST, name: str, value: ast.AST, kind: str) -> list[tuple[str, ast.AST, ast.AST]]:  # fmt: skip
        if _is_name(target, name):
            return [(kind, target, value)]
        if isinstance(target, ast.Tuple):
            for index, element in enumerate(target.elts):
                if _is_name(element, name):
                    return [(f"{kind}[{index}]", target, value)]
        return []

    def _name_trusted(self, node: ast.Name) -> bool:
        for scope in (self.module.scope_of(node), self.module.tree):
            bindings = self._bindings(scope, node.id)
            if bindings:
                return all(self._binding_trusted(scope, *b) for b in bindings)
        if node.id in self.module.imports:
            source, original = self.module.imports[node.id]
            other = self._other(source)
            if other is not None:
                return other._name_trusted(ast.Name(id=original or node.id))
        return False

    def _binding_trusted(self, scope: ast.AST, kind: str, node: ast.AST, value: ast.AST) -> bool:
        key = (id(node), kind)
        if key in self._visiting:
            return True  # a cycle (x += x): the other bindings decide
        self._visiting.add(key)
        try:
            if kind in ("assign", "augment", "append"):
                return self.trusted(value)
            if kind == "extend":
                return self.trusted_items(value)
            if kind == "iterate":
                return self.trusted_items(value)
            if kind.startswith(("assign[", "iterate[")):
                index = int(kind[kind.index("[") + 1 : -1])
                if kind.startswith("assign"):
                    return self._unpacked_trusted(value, index)
                return self._iterated_element_trusted(value, index)
            return id(scope) in self._trusted_parameters  # else a value from the caller
        finally:
            self._visiting.discard(key)

    def _unpacked_trusted(self, value: ast.AST, index: int) -> bool:
        if isinstance(value, ast.Tuple) and index < len(value.elts):
            return self.trusted(value.elts[index])
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            function = self.module.function(value.func.id)
            if function is None:
                return False
            returns = [n for n in _walk_scope(function) if isinstance(n, ast.Return)]
            return bool(returns) and all(
                n.value is not None and self._unpacked_trusted(n.value, index) for n in returns
            )
        return False

    def _iterated_element_trusted(self, iterable: ast.AST, index: int) -> bool:
        if _is_call_to(iterable, "enumerate"):
            assert isinstance(iterable, ast.Call)
            return index == 0 or (index == 1 and self.trusted(iterable.args[0]))
        if isinstance(iterable, ast.Tuple | ast.List):
            return all(
                isinstance(item, ast.Tuple | ast.List)
                and index < len(item.elts)
                and self.trusted(item.elts[index])
                for item in iterable.elts
            )
        return False

    # -- expressions ----------------------------------------------------------------------
    def trusted(self, node: ast.AST) -> bool:
        """Whether ``node`` is text made only of literals, or a collection of such texts."""
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str | int | float | type(None))
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return all(self.trusted(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(self.trusted(k) for k in node.keys if k is not None) and all(
                self.trusted(v) for v in node.values
            )
        if _is_call_to(node, "len", "range"):  # numbers: placeholder counts and positions
            return True
        if isinstance(node, ast.GeneratorExp | ast.ListComp):
            return self.trusted(node.elt)
        if isinstance(node, ast.JoinedStr):
            return all(
                self.trusted(v.value) for v in node.values if isinstance(v, ast.FormattedValue)
            )
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mult):  # "?" * n: a literal repeated
                return self.trusted(node.left) or self.trusted(node.right)
            if isinstance(node.op, ast.Add | ast.Sub | ast.Mod):
                return self.trusted(node.left) and self.trusted(node.right)
            return False
        if isinstance(node, ast.Name):
            return self._name_trusted(node)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if self._is_dialect(node.value):
                return self._dialect_attribute_trusted(node.attr)
            source = self.module.imports.get(node.value.id)
            if source is not None:
                other = self._other(f"{source[0]}.{source[1]}")
                return other is not None and other._name_trusted(ast.Name(id=node.attr))
            return False
        if isinstance(node, ast.Subscript):  # an item of a literal tuple
            return self.trusted_items(node.value)
        if isinstance(node, ast.IfExp):
            return self.trusted(node.body) and self.trusted(node.orelse)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, receiver = node.func.attr, node.func.value
            if isinstance(receiver, ast.Name) and self._is_dialect(receiver):
                arguments = [*node.args, *(k.value for k in node.keywords)]
                return all(self.trusted(a) for a in arguments) and self._dialect_method_trusted(
                    method
                )
            if method == "join":
                return self.trusted(receiver) and all(self.trusted_items(a) for a in node.args)
            if method == "format":
                return self.trusted(receiver) and all(
                    self.trusted(a) for a in [*node.args, *(k.value for k in node.keywords)]
                )
            if method in ("strip", "upper", "lower", "replace", "split"):
                return self.trusted(receiver) and all(self.trusted(a) for a in node.args)
        return False

    def trusted_items(self, node: ast.AST) -> bool:
        """Whether iterating ``node`` gives only literal-made text."""
        return self.trusted(node)


def _is_call_to(node: ast.AST, *names: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _called(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute):
            return node.func.attr
        if isinstance(node.func, ast.Name):
            return node.func.id
    return None


def _builds_sql(node: ast.AST, talks_sql: bool) -> bool:
    """An execute call (where a driver is imported), or text formatting that reads as SQL."""
    if isinstance(node, ast.Call) and _called(node) in _EXECUTE:
        return talks_sql and bool(node.args)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "format":
            return bool(_SQL.search(_literal_text(node.func.value)))
        return False
    if isinstance(node, ast.JoinedStr):
        return bool(_SQL.search(_literal_text(node)))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return bool(_SQL.search(_literal_text(node.left)))
    return False


def _sql_of(node: ast.AST) -> ast.AST:
    """The expression whose text is the SQL: an execute call's first argument, else itself."""
    if isinstance(node, ast.Call) and _called(node) in _EXECUTE:
        return node.args[0]
    return node


def _checked_elsewhere(module: _Module, node: ast.AST, sql: ast.AST) -> bool:
    """SQL checked where it comes from: a sink-named function handing its first parameter on
    (checked at its calls), or the text a dialect hook returns (checked where it is used)."""
    function = module.scope_of(node)
    if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    first = function.args.args[:1]
    if function.name in _EXECUTE and first and _is_name(sql, first[0].arg):
        return True
    where = module.path.with_suffix("").as_posix()
    dialect = any(where.endswith(dotted.replace(".", "/")) for dotted in _DIALECT_MODULES)
    return (
        dialect
        and isinstance(module.parents.get(function), ast.ClassDef)
        and isinstance(module.parents.get(node), ast.Return)
    )


def _package_parts(path: Path) -> tuple[str, ...]:
    """The folders of ``path`` within the package (none for a file outside it)."""
    try:
        return path.resolve().relative_to(_PACKAGE_ROOT).parts[:-1]
    except ValueError:
        return ()


def check_tree(tree: ast.Module, path: Path) -> list[Finding]:
    checker = _Checker(_Module(path, tree))
    findings: list[Finding] = []
    imported = {
        alias.name.partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {
        node.module.partition(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    talks_sql = bool(imported & _DRIVERS) or "store" in _package_parts(path)

    def report(node: ast.AST) -> None:
        findings.append(Finding(str(path), getattr(node, "lineno", 0), ast.unparse(node)[:160]))

    for node in ast.walk(tree):
        if not _builds_sql(node, talks_sql):
            continue
        sql = _sql_of(node)
        if not _checked_elsewhere(checker.module, node, sql) and not checker.trusted(sql):
            report(sql)
    return findings


def check_file(path: Path) -> list[Finding]:
    return check_tree(ast.parse(path.read_text()), path)
