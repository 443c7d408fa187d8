"""The HTTP handlers a Python file defines, found by parsing it (`ast`, never regexes).

The editor puts "Debug live traffic" above each handler, with a breakpoint on its first
statement and, for personal intercepts, a `pathPrefix` filter for its route. Recognised:

- Flask and Starlette/FastAPI decorators on any receiver (`app`, a blueprint, an `APIRouter`):
  `@x.route/get/post/put/delete/patch/head/options/api_route("/path", methods=[…])`, also on
  functions nested in an app factory and under other decorators; a receiver built in the same
  file with `url_prefix=`/`prefix=` gets that prefix;
- registrations by call: Flask `x.add_url_rule(rule, endpoint, view_func)`, FastAPI
  `x.add_api_route(path, endpoint)`, Starlette `Route(path, endpoint)`, whose handler is a
  function or a class-based view (`MethodView`/`HTTPEndpoint`: one handler per verb method);
- Django: the `path()`/`re_path()` entries of the package's `urls.py` (passed in as `urls`)
  that name a view of this file (`views.f`, `f`, `views.V.as_view()`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

VERBS = ("get", "post", "put", "delete", "patch", "head", "options")
_DECORATORS = {"route", "api_route", *VERBS}
_PREFIX_KEYWORDS = ("url_prefix", "prefix")
_REGISTRATIONS = {"add_url_rule": "view_func", "add_api_route": "endpoint", "Route": "endpoint"}
_DJANGO = {"path", "re_path"}

Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class HttpHandler:
    name: str
    """The function, or `Class.verb` for a method of a class-based view."""
    line: int
    """1-based line the editor's lens goes above: the first decorator, else the `def`."""
    body_line: int
    """1-based line of the handler's first statement (after a docstring): the breakpoint."""
    path: str
    """The route as declared, with a same-file prefix; Django's gets a leading `/`."""
    methods: tuple[str, ...]
    """Upper-case HTTP methods; empty means any."""


@dataclass(frozen=True)
class _Registration:
    view: str
    """Function or class name the route names."""
    path: str
    methods: tuple[str, ...] | None
    """None: the framework's default (any verb method of a class, else GET/any)."""


def find_http_handlers(source: str, urls: str | None = None) -> list[HttpHandler]:
    """Every handler defined in `source`, in line order; [] when it does not parse.

    `urls`: the source of the `urls.py` next to this file (Django), if there is one.
    """
    tree = _parse(source)
    if tree is None:
        return []
    prefixes = _prefixes(tree)
    found: list[HttpHandler] = []
    for node in ast.walk(tree):
        if isinstance(node, Function):
            found.extend(_decorated(node, prefixes))
    registrations = list(_registrations(tree, prefixes))
    url_tree = _parse(urls) if urls is not None else None
    if url_tree is not None:
        registrations.extend(_django(url_tree))
    definitions = _definitions(tree)
    for reg in registrations:
        definition = definitions.get(reg.view)
        if definition is not None:
            found.extend(_registered(definition, reg))
    return sorted(set(found), key=lambda h: (h.line, h.body_line, h.path, h.methods))


def route_path_prefix(path: str) -> str:
    """The literal start of a route, for a `pathPrefix` filter: up to the first variable part
    (`<id>`, `{id}`, a regex group or class); a regex's `^` dropped."""
    text = path.replace("^", "", 1) if path.startswith(("^", "/^")) else path
    for index, char in enumerate(text):
        if char in "<{([.*+?$\\|":
            return text[:index] or "/"
    return text or "/"


# --- decorators -------------------------------------------------------------------------------


def _decorated(node: Function, prefixes: dict[str, str]) -> Iterator[HttpHandler]:
    for decorator in node.decorator_list:
        if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
            continue
        verb = decorator.func.attr
        path = _path_argument(decorator, ("rule", "path"))
        if verb not in _DECORATORS or path is None:
            continue
        prefix = prefixes.get(_name(decorator.func.value) or "", "")
        methods = (verb.upper(),) if verb in VERBS else _methods(decorator) or ("GET",)
        yield _handler(node, node.name, prefix + path, methods)


# --- registrations by call ----------------------------------------------------------------------


def _registrations(tree: ast.Module, prefixes: dict[str, str]) -> Iterator[_Registration]:
    for call in _calls(tree):
        called = _name(call.func)
        keyword = _REGISTRATIONS.get(called.rpartition(".")[2] if called else "")
        path = _path_argument(call, ("rule", "path"))
        if keyword is None or path is None or called is None:
            continue
        positional = 2 if called.endswith("add_url_rule") else 1
        view = _keyword(call, keyword)
        if view is None and len(call.args) > positional:
            view = call.args[positional]
        name = _view_name(view)
        if name is not None:
            prefix = prefixes.get(called.rpartition(".")[0], "")
            yield _Registration(name, prefix + path, _methods(call))


def _django(tree: ast.Module) -> Iterator[_Registration]:
    for call in _calls(tree):
        called = _name(call.func)
        path = _path_argument(call, ("route",))
        if called is None or called.rpartition(".")[2] not in _DJANGO or path is None:
            continue
        name = _view_name(_keyword(call, "view") or (call.args[1] if len(call.args) > 1 else None))
        if name is not None:
            yield _Registration(name, path if path.startswith("/") else "/" + path, None)


def _registered(node: Function | ast.ClassDef, reg: _Registration) -> Iterator[HttpHandler]:
    if not isinstance(node, ast.ClassDef):
        yield _handler(node, node.name, reg.path, reg.methods or ())
        return
    methods = {m.name: m for m in node.body if isinstance(m, Function)}
    verbs = [v for v in VERBS if v in methods and (reg.methods is None or v.upper() in reg.methods)]
    for verb in verbs:
        yield _handler(methods[verb], f"{node.name}.{verb}", reg.path, (verb.upper(),))
    if not verbs and "dispatch_request" in methods:
        dispatch = methods["dispatch_request"]
        yield _handler(dispatch, f"{node.name}.dispatch_request", reg.path, reg.methods or ())


def _view_name(view: ast.expr | None) -> str | None:
    """`f`, `views.f` → f; `V.as_view(…)`, `views.V.as_view(…)` → V."""
    func = view.func if isinstance(view, ast.Call) else None
    if isinstance(func, ast.Attribute) and func.attr == "as_view":
        view = func.value
    name = _name(view) if view is not None else None
    return name.rpartition(".")[2] if name is not None else None


# --- helpers ----------------------------------------------------------------------------------


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _calls(tree: ast.Module) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def _handler(node: Function, name: str, path: str, methods: tuple[str, ...]) -> HttpHandler:
    lines = [d.lineno for d in node.decorator_list] + [node.lineno]
    return HttpHandler(name, min(lines), _first_statement(node), path, methods)


def _first_statement(node: Function) -> int:
    body = node.body
    docstring = (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    return body[1].lineno if docstring and len(body) > 1 else body[0].lineno


def _definitions(tree: ast.Module) -> dict[str, Function | ast.ClassDef]:
    """Functions and classes by name, nested ones too (an app factory's views)."""
    found: dict[str, Function | ast.ClassDef] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.setdefault(node.name, node)
    return found


def _prefixes(tree: ast.Module) -> dict[str, str]:
    """`bp = Blueprint(…, url_prefix="/api")`, `router = APIRouter(prefix="/api")`: name → prefix."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            prefix = _str_keyword(node.value, _PREFIX_KEYWORDS)
            for target in node.targets:
                if prefix is not None and isinstance(target, ast.Name):
                    found[target.id] = prefix.rstrip("/")
    return found


def _path_argument(call: ast.Call, keywords: tuple[str, ...]) -> str | None:
    return _str(call.args[0]) if call.args else _str_keyword(call, keywords)


def _str_keyword(call: ast.Call, names: tuple[str, ...]) -> str | None:
    """The first of the keywords `names` given as a string literal."""
    return next((s for n in names if (s := _str(_keyword(call, n))) is not None), None)


def _methods(call: ast.Call) -> tuple[str, ...] | None:
    value = _keyword(call, "methods")
    if not isinstance(value, (ast.List, ast.Tuple, ast.Set)):
        return None
    names = [_str(e) for e in value.elts]
    return tuple(n.upper() for n in names if n is not None)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _name(node: ast.expr) -> str | None:
    """`a` or `a.b.c` as text; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _name(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None
