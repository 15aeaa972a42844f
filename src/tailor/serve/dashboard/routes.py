"""The dashboard's pages: login, overview, customer lookup, item page, models.

Every page but the login form needs a valid API key of any role, kept after login in an
HttpOnly, SameSite=Strict cookie; without one a page redirects to ``/login``. A page reads
``state.served`` once, so it shows one build from top to bottom, the build the API serves.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import jinja2
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tailor.dataset import Dataset
from tailor.recommend.rules import bundles as top_bundles
from tailor.serve.dashboard.charts import segments_chart, weekly_revenue_chart
from tailor.serve.dashboard.kpis import build_sales
from tailor.serve.routes.items import known_item
from tailor.serve.state import Served, ServingState, id_key
from tailor.serve.views import customer_row, listed, recent_purchases, records, suggested_actions

HERE = Path(__file__).parent
STATIC = HERE / "static"
COOKIE = "tailor_key"
COOKIE_SECONDS = 12 * 3600
LIST_LENGTH = 10
MAX_FORM_BYTES = 16_384
HEADERS = {
    # Pages show customers' data: never cached, never framed; scripts only from this server.
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
}


def plotly_js() -> Path:
    """The plotly.min.js inside the installed ``plotly`` package."""
    found = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    return Path(str(found))


def static_files() -> StaticFiles:
    """The dashboard's CSS and script, to mount at ``/static``."""
    return StaticFiles(directory=STATIC)


# -- templates ---------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _number(value: Any, digits: int = 0) -> str:
    if _missing(value):
        return "–"
    return f"{float(value):,.{digits}f}"


def _percent(value: Any, digits: int = 1) -> str:
    if _missing(value):
        return "–"
    return f"{float(value):.{digits}%}"


def _metric(value: Any) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, int | bool):
        return str(value)
    return f"{float(value):.3f}" if isinstance(value, float) else str(value)


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("tailor.serve.dashboard", "templates"),
    autoescape=True,  # every value is escaped unless a template says otherwise (none does)
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    money=lambda v: _number(v, 2),
    number=_number,
    percent=_percent,
    metric=_metric,
    urlpart=lambda v: quote(str(v), safe=""),
    missing=_missing,
)
templates = Jinja2Templates(env=_env)


# -- who is looking, and at which build --------------------------------------------------------


class LoginRequired(Exception):
    """No valid key in the cookie."""


class NoBuild(Exception):
    """The server has no build to show yet."""


@dataclass(frozen=True)
class Viewer:
    """A signed-in request: the key's role, the build it reads (one, start to end), the state."""

    role: str
    served: Served
    state: ServingState


def signed_in(request: Request) -> str | None:
    """The role of the cookie's key; None without a valid one."""
    key = request.cookies.get(COOKIE)
    if not key:
        return None
    return request.app.state.serving.keys.role(key)


def viewer_of(request: Request) -> Viewer | None:
    """Who is looking and at which build; None when not signed in or nothing is built."""
    role = signed_in(request)
    state: ServingState = request.app.state.serving
    served = state.served
    if role is None or served is None:
        return None
    return Viewer(role, served, state)


async def viewing(request: Request) -> Viewer:
    viewer = viewer_of(request)
    if viewer is None:
        raise LoginRequired if signed_in(request) is None else NoBuild
    return viewer


Signed = Annotated[Viewer, Depends(viewing)]


def local_path(target: str | None) -> str:
    """``target`` when it is a path on this server, else ``/`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render(
    request: Request,
    template: str,
    viewer: Viewer | None = None,
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> HTMLResponse:
    served = viewer.served if viewer is not None else None
    return templates.TemplateResponse(
        request,
        template,
        {
            "role": viewer.role if viewer is not None else None,
            "build_id": served.build_id if served is not None else None,
            "built_at": served.info.manifest.get("created_at") if served is not None else None,
            "figures": False,
            "page": None,
            **context,
        },
        status_code=status_code,
    )


class PageRoute(APIRoute):
    """Answers with pages: a login redirect, and errors as HTML, with the pages' headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                path = request.url.path
                if request.url.query:
                    path += "?" + request.url.query
                target = "/login" if path == "/" else f"/login?next={quote(path, safe='')}"
                response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
            except NoBuild:
                response = render(
                    request,
                    "error.html",
                    status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
                    title="No build yet",
                    message="Run `tailor build`, or POST /v1/admin/rebuild, then reload.",
                )
            except HTTPException as exc:
                response = render(
                    request,
                    "error.html",
                    viewer_of(request),
                    status_code=exc.status_code,
                    title="Not found" if exc.status_code == 404 else "Something is wrong",
                    message=str(exc.detail),
                )
            if not request.url.path.startswith("/static/"):
                response.headers.update(HEADERS)
            return response

        return route


router = APIRouter(route_class=PageRoute, include_in_schema=False, tags=["dashboard"])


# -- login -------------------------------------------------------------------------------------


@router.get("/static/plotly.min.js")
def plotly_script() -> FileResponse:
    """plotly.js from the plotly package (served here: the dashboard works offline)."""
    return FileResponse(
        plotly_js(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/login", name="login")
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=local_path(next), error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the posted key; a valid one of any role is kept in the cookie."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    key = (form.get("key") or [""])[0].strip()
    target = local_path((form.get("next") or ["/"])[0])
    role = request.app.state.serving.keys.role(key) if key else None
    if role is None:
        return render(
            request,
            "login.html",
            status_code=status.HTTP_401_UNAUTHORIZED,
            next=target,
            error="That key is unknown or revoked. Ask an admin for one (tailor keys create).",
        )
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        COOKIE,
        key,
        max_age=COOKIE_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


# -- pages -------------------------------------------------------------------------------------


def titles(ds: Dataset, ids: list[Any]) -> list[str | None]:
    """Each item's title, None where the catalogue has none."""
    if not ids or "title" not in ds.items:
        return [None] * len(ids)
    columns = ds.item_index(ids)
    known = ds.items["title"].to_numpy(object)
    return [None if c < 0 or _missing(known[c]) else str(known[c]) for c in columns]


def titled(ds: Dataset, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = titles(ds, [e["item_id"] for e in entries])
    return [{**e, "title": name} for e, name in zip(entries, names, strict=True)]


@router.get("/", name="overview")
def overview(request: Request, viewer: Signed) -> HTMLResponse:
    """KPIs with their trend, weekly revenue, RFM segments, clusters, this week's anomalies."""
    served = viewer.served
    ds = served.recommender.dataset_
    sales = build_sales(str(served.info.path), ds)
    weekly = sales.weekly
    found = served.intelligence
    segments = clusters = anomalies = None
    segment_figure = None
    anomaly_week = None
    if found is not None:
        segments = records(found.segments)
        clusters = records(found.clusters[["cluster", "size", "share", "revenue_share",
                                           "description"]])  # fmt: skip
        anomalies = records(found.anomalies)
        anomaly_week = (found.summary.get("anomalies") or {}).get("last_week")
        if len(found.segments):
            segment_figure = segments_chart(found.segments)
    dataset = served.info.manifest.get("dataset") or {}
    return render(
        request,
        "overview.html",
        viewer,
        page="overview",
        figures=True,
        kpis=sales.kpis,
        period=(dataset.get("first_event"), dataset.get("last_event")),
        weekly=[(day.strftime("%Y-%m-%d"), float(v)) for day, v in weekly.items()],
        weekly_figure=weekly_revenue_chart(weekly) if len(weekly) else None,
        segments=segments,
        segment_figure=segment_figure,
        clusters=clusters,
        anomalies=anomalies,
        anomaly_week=anomaly_week,
    )


@router.get("/customers", name="customer_lookup")
def customer_lookup(
    request: Request,
    viewer: Signed,
    customer_id: Annotated[str | None, Query(alias="id", max_length=256)] = None,
) -> Response:
    """The lookup form; with ``?id=`` the customer's page (the id typed is looked up: pages are
    named by the id as stored, a pseudonym where the warehouse has them)."""
    if customer_id and customer_id.strip():
        target = f"/customers/{quote(viewer.state.customer_key(customer_id), safe='')}"
        return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    best = None
    found = viewer.served.intelligence
    if found is not None:
        columns = ["customer_id", "rfm_segment", "monetary", "clv", "churn_probability"]
        top = found.customers.nlargest(LIST_LENGTH, "monetary")[columns]
        best = records(top)
    return render(request, "customer_lookup.html", viewer, page="customers", best=best)


@router.get("/customers/{customer_id:path}", name="customer")
def customer_page(request: Request, viewer: Signed, customer_id: str) -> HTMLResponse:
    """The customer 360 card and their recommendations; an unknown customer gets the list a
    newcomer gets."""
    served, state = viewer.served, viewer.state
    ds = served.recommender.dataset_
    key = id_key(customer_id)
    frame = served.recommender.recommend([key], k=LIST_LENGTH, recent=state.recent.frame(key))
    recommendations = titled(ds, listed(frame, "item_id"))
    found = served.intelligence
    row = served.customer_rows.get(key) if found is not None else None
    if row is None and (found is not None or ds.customer_index([key])[0] < 0):
        return render(
            request,
            "customer_unknown.html",
            viewer,
            page="customers",
            status_code=status.HTTP_404_NOT_FOUND,
            customer_id=key,
            recommendations=recommendations,
        )
    data = customer_row(found.customers, row) if found is not None and row is not None else None
    if data is not None:
        named = data["customer_id"]
    else:  # a build without customer intelligence
        named = ds.customer_ids[ds.customer_index([key])].tolist()[0]
    with state.reading() as wh:
        bought = titled(ds, recent_purchases(wh, named))
    threshold = clv_days = None
    actions: list[dict[str, str]] = []
    if found is not None and data is not None:
        threshold = (found.summary.get("anomalies") or {}).get("threshold")
        clv_days = found.summary.get("clv_horizon_days")
        actions = suggested_actions(data, threshold)
    return render(
        request,
        "customer.html",
        viewer,
        page="customers",
        customer_id=key,
        customer=data,
        unusual=bool(
            data is not None
            and threshold is not None
            and not _missing(data.get("anomaly_score"))
            and data["anomaly_score"] >= threshold
        ),
        threshold=threshold,
        clv_days=clv_days,
        actions=actions,
        purchases=bought,
        recommendations=recommendations,
    )


@router.get("/items", name="item_lookup")
def item_lookup(
    viewer: Signed, item_id: Annotated[str | None, Query(alias="id", max_length=256)] = None
) -> Response:
    target = f"/items/{quote(item_id.strip(), safe='')}" if item_id and item_id.strip() else "/"
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.get("/items/{item_id:path}", name="item")
def item_page(request: Request, viewer: Signed, item_id: str) -> HTMLResponse:
    """An item's attributes and sales, similar items and bundles, each with its reason."""
    served = viewer.served
    ds = served.recommender.dataset_
    item = known_item(served, item_id)  # 404 (an HTML page here) for an unknown item
    column = int(ds.item_index([item])[0])
    attributes = {
        name: value
        for name, value in ds.items.iloc[column].items()
        if name != "item_id" and not _missing(value)
    }
    bought = build_sales(str(served.info.path), ds).purchases
    bought = bought.loc[bought["item"].to_numpy() == column]
    sales = {
        "revenue": float(bought["spend"].sum()),
        "customers": int(bought["customer"].nunique()),
        "baskets": int(bought["basket"].nunique()),
    }
    similar = titled(ds, listed(served.recommender.similar_items([item], k=LIST_LENGTH),
                                "similar_item_id"))  # fmt: skip
    together = None
    if served.rules is not None:
        frame = top_bundles(served.rules, item, k=LIST_LENGTH)
        together = titled(ds, [
            {"item_id": i, "lift": float(lift), "confidence": float(conf), "reason": str(reason)}
            for i, lift, conf, reason in zip(
                frame["bundle_item_id"].tolist(), frame["lift"].tolist(),
                frame["confidence"].tolist(), frame["reason"].tolist(), strict=True,
            )  # k rows at most
        ])  # fmt: skip
    return render(
        request,
        "item.html",
        viewer,
        item_id=item,
        title=titles(ds, [item])[0],
        attributes=attributes,
        sales=sales,
        similar=similar,
        bundles=together,
    )


@router.get("/models", name="models")
def models_page(request: Request, viewer: Signed) -> HTMLResponse:
    """How the build's models did: recommenders on validation, churn against baselines, CLV."""
    manifest = viewer.served.info.manifest
    chosen = manifest.get("recommenders") or {}
    validation = chosen.get("validation") or {}
    metrics: list[str] = []
    for scores in validation.values():  # one per recommender: a few
        metrics += [m for m in scores if m not in metrics]
    summary = viewer.served.intelligence.summary if viewer.served.intelligence else {}
    return render(
        request,
        "models.html",
        viewer,
        page="models",
        default=chosen.get("default"),
        k=chosen.get("k"),
        validation_days=chosen.get("validation_days"),
        metrics=metrics,
        validation=validation,
        churn=summary.get("churn"),
        clv=summary.get("clv"),
        skipped=summary.get("skipped") or {},
    )
