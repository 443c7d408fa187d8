"""The route finder (`core.http_handlers`) over sample Flask, FastAPI/Starlette and Django files."""

from __future__ import annotations

import textwrap

import pytest
from innerloop.core.http_handlers import HttpHandler, find_http_handlers, route_path_prefix


def routes(source: str, urls: str | None = None) -> list[tuple[str, int, int, str, tuple[str, ...]]]:
    found = find_http_handlers(
        textwrap.dedent(source), textwrap.dedent(urls) if urls is not None else None
    )
    return [(h.name, h.line, h.body_line, h.path, h.methods) for h in found]


FLASK = '''\
from functools import wraps
from flask import Blueprint, Flask
from flask.views import MethodView

app = Flask(__name__)
bp = Blueprint("orders", __name__, url_prefix="/api/")

def login_required(f):
    @wraps(f)
    def inner(*a, **k):
        return f(*a, **k)
    return inner

@app.route("/")
def index():
    """Home."""
    return "hi"

@app.route("/orders/<int:order_id>", methods=["GET", "post"])
@login_required
def order(order_id):
    return str(order_id)

@bp.get("/items")
async def items():
    return []

@app.delete(rule="/items/<id>")
def drop(id):
    """Only a docstring."""

class ItemAPI(MethodView):
    def get(self, id):
        return id

    def post(self, id):
        return id

    def helper(self):
        return 1

app.add_url_rule("/things/<id>", view_func=ItemAPI.as_view("things"))
app.add_url_rule("/raw", "raw", raw_view, methods=["PUT"])

def raw_view():
    return ""

class Plain:
    def dispatch_request(self):
        return "plain"

bp.add_url_rule("/plain", view_func=Plain.as_view("plain"))
app.add_url_rule("/missing", view_func=not_defined_here)
app.add_url_rule("/lambda", view_func=lambda: "x")
'''


def test_flask_decorators_blueprints_and_class_views() -> None:
    assert routes(FLASK) == [
        ("index", 14, 17, "/", ("GET",)),
        ("order", 19, 22, "/orders/<int:order_id>", ("GET", "POST")),
        ("items", 24, 26, "/api/items", ("GET",)),
        ("drop", 28, 30, "/items/<id>", ("DELETE",)),
        ("ItemAPI.get", 33, 34, "/things/<id>", ("GET",)),
        ("ItemAPI.post", 36, 37, "/things/<id>", ("POST",)),
        ("raw_view", 45, 46, "/raw", ("PUT",)),
        ("Plain.dispatch_request", 49, 50, "/api/plain", ()),
    ]


def test_flask_app_factory_nested_views() -> None:
    source = """\
    def create_app():
        app = Flask(__name__)

        @app.route("/health")
        def health():
            return "ok"

        return app
    """
    assert routes(source) == [("health", 4, 6, "/health", ("GET",))]


FASTAPI = '''\
from fastapi import APIRouter, FastAPI
from starlette.endpoints import HTTPEndpoint
from starlette.routing import Route

app = FastAPI()
router = APIRouter(prefix="/v1")

@app.get("/users/{user_id}")
async def read_user(user_id: int):
    return {"id": user_id}

@router.post(path="/users")
@some.other.decorator(3)
async def create_user():
    return {}

@app.api_route("/both", methods=("GET", "PATCH"))
def both():
    return 1

async def listing():
    return []

app.add_api_route("/list", listing, methods=["GET"])
router.add_api_route("/list2", endpoint=listing)

class Counter(HTTPEndpoint):
    async def get(self, request):
        return 1
    async def put(self, request):
        return 2

routes = [Route("/counter", Counter, methods=["PUT"]), Route("/fn", endpoint=listing)]
'''


def test_fastapi_routers_and_starlette_routes() -> None:
    assert routes(FASTAPI) == [
        ("read_user", 8, 10, "/users/{user_id}", ("GET",)),
        ("create_user", 12, 15, "/v1/users", ("POST",)),
        ("both", 17, 19, "/both", ("GET", "PATCH")),
        ("listing", 21, 22, "/fn", ()),
        ("listing", 21, 22, "/list", ("GET",)),
        ("listing", 21, 22, "/v1/list2", ()),
        ("Counter.put", 30, 31, "/counter", ("PUT",)),
    ]


DJANGO_URLS = '''\
from django.urls import include, path, re_path
from . import views
from .views import plain

urlpatterns = [
    path("", views.home, name="home"),
    path("orders/<int:pk>/", views.OrderView.as_view(), name="order"),
    re_path(r"^legacy/(?P<pk>\\d+)/$", view=plain),
    path("api/", include("api.urls")),
    path("other/", other_module.view_elsewhere),
    path(route="/abs", view=views.home),
    path(some_variable, views.home),
]
'''

DJANGO_VIEWS = '''\
from django.contrib.auth.decorators import login_required
from django.views import View

@login_required
def home(request):
    return None

class OrderView(View):
    def get(self, request, pk):
        return pk

    async def post(self, request, pk):
        return pk

def plain(request, pk):
    return pk
'''


def test_django_views_named_by_urls() -> None:
    assert routes(DJANGO_VIEWS, DJANGO_URLS) == [
        ("home", 4, 6, "/", ()),
        ("home", 4, 6, "/abs", ()),
        ("OrderView.get", 9, 10, "/orders/<int:pk>/", ("GET",)),
        ("OrderView.post", 12, 13, "/orders/<int:pk>/", ("POST",)),
        ("plain", 15, 16, "/^legacy/(?P<pk>\\d+)/$", ()),
    ]


def test_django_without_urls_finds_nothing_and_bad_sources_are_empty() -> None:
    assert routes(DJANGO_VIEWS) == []
    assert routes(DJANGO_VIEWS, "urlpatterns = [") == []
    assert routes("def broken(:\n") == []
    assert routes("x = 1\0") == []


def test_calls_that_are_not_routes() -> None:
    source = """\
    import requests
    cache = Cache(prefix=1)

    @cache.get(key)
    @staticmethod
    @app.route(endpoint_only="x")
    @app.post("/p")
    def handler():
        requests.get("/not-a-route")
        app.add_url_rule(rule_variable, view_func=handler)
        return 1
    """
    assert routes(source) == [("handler", 4, 9, "/p", ("POST",))]


def test_result_is_typed() -> None:
    (handler,) = find_http_handlers('@app.get("/")\ndef f():\n    pass\n')
    assert handler == HttpHandler("f", 1, 3, "/", ("GET",))


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/orders/<int:id>", "/orders/"),
        ("/users/{user_id}", "/users/"),
        ("/^legacy/(?P<pk>\\d+)/$", "/legacy/"),
        ("^api/", "api/"),
        ("/static", "/static"),
        ("/<id>", "/"),
        ("", "/"),
        ("/a.json", "/a"),
    ],
)
def test_route_path_prefix(path: str, prefix: str) -> None:
    assert route_path_prefix(path) == prefix
