"""The dashboard in-process (TestClient) over a generated, built shop: the login flow, every
page with its figures checked against SQL on the warehouse and against the HTTP API, unknown
customers and items, plotly.js served locally, escaping, logout."""

from __future__ import annotations

import html
import importlib.resources
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from tailor.serve import ServeSettings, create_app
from tailor.serve.auth import create_key
from tailor.serve.dashboard.kpis import sales_kpis, weekly_revenue
from tailor.serve.dashboard.routes import COOKIE
from tailor.store import Warehouse

PAGES = ["/", "/customers", "/models"]


@pytest.fixture
def browser(client: TestClient) -> Iterator[TestClient]:
    """The module's client with no cookie: a browser that has not signed in."""
    client.cookies.clear()
    yield client
    client.cookies.clear()


@pytest.fixture
def signed_in(browser: TestClient, keys: dict[str, str]) -> TestClient:
    response = browser.post("/login", data={"key": keys["read"], "next": "/"})
    assert response.status_code == 200
    return browser


@pytest.fixture(scope="module")
def sales(client: TestClient) -> dict[str, dict[str, float]]:
    """Revenue, buying customers, baskets: all data, its last 28 days and the 28 before, in SQL
    on the warehouse (the dashboard computes them in pandas from the build's dataset)."""
    query = """
    WITH bought AS (
        SELECT e.customer_id, e.timestamp,
               coalesce(e.value, coalesce(e.quantity, 1) * i.price, 0) AS spend,
               (e.customer_id, e.basket_id,
                CASE WHEN e.basket_id IS NULL THEN e.timestamp END) AS basket
        FROM events e LEFT JOIN items i USING (item_id) WHERE e.event_type = 'purchase'
    ), bounds AS (
        SELECT CAST(CAST(max(timestamp) AS DATE) + 1 AS TIMESTAMP) AS stop FROM events
    )
    SELECT period, sum(spend), count(DISTINCT customer_id), count(DISTINCT basket)
    FROM (
        SELECT 'total' AS period, * FROM bought
        UNION ALL SELECT 'recent', b.* FROM bought b, bounds
            WHERE b.timestamp >= stop - INTERVAL 28 DAY AND b.timestamp < stop
        UNION ALL SELECT 'before', b.* FROM bought b, bounds
            WHERE b.timestamp >= stop - INTERVAL 56 DAY AND b.timestamp < stop - INTERVAL 28 DAY
    ) GROUP BY period
    """
    with client.app.state.serving.reading() as wh:
        rows = wh.con.execute(query).fetchall()
    found = {}
    for period, revenue, customers, baskets in rows:
        found[period] = {
            "revenue": float(revenue),
            "customers": customers,
            "baskets": baskets,
            "average_basket": float(revenue) / baskets,
        }
    return found


def esc(text: object) -> str:
    """``text`` as the pages write it (Jinja's autoescape)."""
    return str(escape(str(text)))


def kpi(page: str, name: str) -> dict[str, float]:
    match = re.search(
        rf'data-kpi="{name}" data-total="([^"]+)" data-recent="([^"]+)" data-before="([^"]+)"',
        page,
    )
    assert match, name
    return dict(zip(("total", "recent", "before"), map(float, match.groups()), strict=True))


def figure(page: str, element_id: str) -> dict:
    match = re.search(rf'id="{element_id}"[^>]*data-figure="([^"]*)"', page)
    assert match, element_id
    return json.loads(html.unescape(match.group(1)))


def table(page: str, element_id: str) -> str:
    start = page.index(f'id="{element_id}"')
    return page[start : page.index("</table>", start)]


# -- login ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/customers", "/customers/1", "/items/1", "/models"])
def test_pages_redirect_to_login_without_a_key(browser: TestClient, path: str) -> None:
    response = browser.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    if path != "/":
        assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")
    browser.cookies.set(COOKIE, "tk_00000000_forged")
    assert browser.get(path, follow_redirects=False).status_code == 303


def test_a_wrong_key_shows_an_error_and_sets_no_cookie(browser: TestClient) -> None:
    form = browser.get("/login")
    assert form.status_code == 200
    assert 'type="password"' in form.text and 'action="/login"' in form.text
    response = browser.post("/login", data={"key": "tk_nope_nope", "next": "/"})
    assert response.status_code == 401
    assert "unknown or revoked" in response.text
    assert "set-cookie" not in response.headers
    assert COOKIE not in browser.cookies
    assert browser.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("role", ["read", "write", "admin"])
def test_a_right_key_sets_a_strict_httponly_cookie_and_redirects(
    browser: TestClient, keys: dict[str, str], role: str
) -> None:
    response = browser.post(
        "/login", data={"key": keys[role], "next": "/models"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/models"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={keys[role]};")
    assert "HttpOnly" in cookie
    assert "samesite=strict" in cookie.lower()
    page = browser.get("/models")
    assert page.status_code == 200
    assert f"{role} key" in page.text


def test_login_never_redirects_off_the_site(browser: TestClient, keys: dict[str, str]) -> None:
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", ""):
        response = browser.post(
            "/login", data={"key": keys["read"], "next": target}, follow_redirects=False
        )
        assert response.headers["location"] == "/"


def test_logout_forgets_the_key(signed_in: TestClient) -> None:
    assert signed_in.get("/", follow_redirects=False).status_code == 200
    response = signed_in.post("/logout", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert f"{COOKIE}=" in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert COOKIE not in signed_in.cookies
    assert signed_in.get("/", follow_redirects=False).status_code == 303


# -- pages ---------------------------------------------------------------------------------------


def test_overview_kpis_match_sql_on_the_warehouse(
    signed_in: TestClient, sales: dict[str, dict[str, float]]
) -> None:
    page = signed_in.get("/").text
    for name in ("revenue", "customers", "baskets", "average_basket"):
        shown = kpi(page, name)
        for period in ("total", "recent", "before"):
            assert shown[period] == pytest.approx(sales[period][name], rel=1e-6), (name, period)
    total = sales["total"]
    assert f"{total['revenue']:,.2f}" in page
    assert f'<dd class="value">{total["customers"]:,}</dd>' in page
    assert f'<dd class="value">{total["baskets"]:,}</dd>' in page
    assert f"{total['average_basket']:,.2f}" in page
    # The trend and its arrow.
    recent, before = sales["recent"]["revenue"], sales["before"]["revenue"]
    change = (recent - before) / before
    assert f"({100 * change:+.1f}%)" in page
    arrow = "▲" if change > 0.005 else "▼" if change < -0.005 else "▶"
    start = page.index('data-kpi="revenue"')
    assert arrow in page[start : page.index("</div>", start)]


def test_overview_revenue_is_the_customers_spend(signed_in: TestClient, client: TestClient) -> None:
    found = client.app.state.serving.served.intelligence
    assert kpi(signed_in.get("/").text, "revenue")["total"] == pytest.approx(
        found.customers["monetary"].sum(), rel=1e-6
    )


def test_overview_weekly_chart_sums_to_the_revenue(
    signed_in: TestClient, sales: dict[str, dict[str, float]]
) -> None:
    page = signed_in.get("/").text
    weekly = figure(page, "weekly-chart")
    (line,) = weekly["data"]
    assert line["type"] == "scatter"
    assert sum(line["y"]) == pytest.approx(sales["total"]["revenue"], abs=0.01 * len(line["y"]))
    days = line["x"]
    assert days == sorted(days) and len(days) >= 17  # 120 days: 18 weeks, partial ones included
    assert all(date.fromisoformat(day).weekday() == 0 for day in days)  # Mondays


def test_overview_segments_clusters_and_anomalies(
    signed_in: TestClient, client: TestClient
) -> None:
    found = client.app.state.serving.served.intelligence
    page = signed_in.get("/").text
    segments = table(page, "segments")
    for row in found.segments.itertuples():
        assert f'<th scope="row">{esc(row.segment)}</th><td class="num">{row.size}</td>' in (
            segments
        )
        assert f"{row.revenue_share:.1%}" in segments
    bars = figure(page, "segments-chart")["data"]
    assert [b["name"] for b in bars] == ["share of customers", "share of revenue"]
    assert sum(bars[0]["y"]) == pytest.approx(100, abs=0.5)
    clusters = table(page, "clusters")
    for row in found.clusters.itertuples():
        assert esc(row.description) in clusters
    anomalies = table(page, "anomalies")
    assert len(found.anomalies) >= 1  # the generated shop has an unusual week
    for row in found.anomalies.itertuples():
        assert f'href="/customers/{row.customer_id}"' in anomalies
        assert esc(row.reason) in anomalies


def test_customer_lookup_redirects_to_the_customer(signed_in: TestClient) -> None:
    response = signed_in.get("/customers", params={"id": " 7 "}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/customers/7"
    lookup = signed_in.get("/customers")
    assert lookup.status_code == 200
    assert 'name="id"' in lookup.text
    assert 'href="/customers/' in table(lookup.text, "best")


def test_customer_page_shows_the_360_and_the_apis_recommendations(
    signed_in: TestClient, client: TestClient, as_role: dict[str, dict[str, str]]
) -> None:
    state = client.app.state.serving
    customers = state.served.intelligence.customers
    row = customers.loc[customers["monetary"].idxmax()]
    customer = row["customer_id"]
    page = signed_in.get(f"/customers/{customer}")
    assert page.status_code == 200
    text = page.text
    card = text[text.index('id="customer-360"') : text.index("</section>", text.index("360"))]
    assert f"<strong>{esc(row['rfm_segment'])}</strong>" in card
    for reason in ("segment_reason", "clv_reason", "churn_reason", "cluster_description"):
        assert esc(row[reason]) in card, reason
    assert f"<strong>{row['clv']:,.2f}</strong>" in card
    assert f"<strong>{row['churn_probability']:.0%}</strong>" in card
    # The same list as GET /v1/customers/{id}/recommendations, reasons included.
    api = client.get(f"/v1/customers/{customer}/recommendations", headers=as_role["read"]).json()
    shown = table(text, "recommendations")
    assert len(api["items"]) == 10
    for entry in api["items"]:
        assert f'href="/items/{entry["item_id"]}"' in shown
        assert esc(entry["reason"]) in shown
    # Recent purchases: the newest purchase in the warehouse is listed first.
    with state.reading() as wh:
        item, value = wh.con.execute(
            "SELECT item_id, value FROM events WHERE customer_id = ? AND event_type = 'purchase' "
            "ORDER BY timestamp DESC LIMIT 1",
            [int(customer)],
        ).fetchone()
    purchases = table(text, "purchases")
    first = purchases[purchases.index("<tbody>") :]
    assert f'href="/items/{item}"' in first[: first.index("</tr>")]
    assert f"{value:,.2f}" in first[: first.index("</tr>")]


def test_unknown_customer_gets_a_friendly_page_with_the_cold_start_list(
    signed_in: TestClient, client: TestClient, as_role: dict[str, dict[str, str]]
) -> None:
    response = signed_in.get("/customers/nobody-here")
    assert response.status_code == 404
    assert "does not know customer" in response.text
    api = client.get("/v1/customers/nobody-here/recommendations", headers=as_role["read"]).json()
    shown = table(response.text, "recommendations")
    assert all(e["reason"].startswith("new here") for e in api["items"])
    for entry in api["items"]:
        assert f'href="/items/{entry["item_id"]}"' in shown
        assert esc(entry["reason"]) in shown


def test_item_page_shows_attributes_similar_items_and_bundles(
    signed_in: TestClient, client: TestClient, as_role: dict[str, dict[str, str]]
) -> None:
    served = client.app.state.serving.served
    item = served.rules["antecedents"].str[0].value_counts().index[0]  # one with bundles
    page = signed_in.get(f"/items/{item}")
    assert page.status_code == 200
    ds = served.recommender.dataset_
    attributes = ds.items.loc[ds.items["item_id"] == item].iloc[0]
    facts = page.text[page.text.index('id="attributes"') :]
    for name in ("title", "department", "brand"):
        assert f"<dt>{name}</dt><dd>{esc(str(attributes[name]))}</dd>" in facts
    with client.app.state.serving.reading() as wh:
        revenue, buyers = wh.con.execute(
            "SELECT sum(value), count(DISTINCT customer_id) FROM events "
            "WHERE item_id = ? AND event_type = 'purchase'",
            [int(item)],
        ).fetchone()
    assert f"<dt>revenue</dt><dd>{revenue:,.2f}</dd>" in facts
    assert f"<dt>customers who bought it</dt><dd>{buyers:,}</dd>" in facts
    for kind, element in (("similar", "similar"), ("bundles", "bundles")):
        api = client.get(f"/v1/items/{item}/{kind}", headers=as_role["read"]).json()
        assert api["items"], kind
        shown = table(page.text, element)
        for entry in api["items"]:
            assert f'href="/items/{entry["item_id"]}"' in shown
            assert esc(entry["reason"]) in shown


def test_unknown_item_is_a_404_page(signed_in: TestClient) -> None:
    response = signed_in.get("/items/no-such-item")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "unknown item" in response.text
    assert 'href="/models"' in response.text  # still the dashboard, navigation included


def test_models_page_marks_the_default_and_shows_churn_and_clv(
    signed_in: TestClient, client: TestClient
) -> None:
    served = client.app.state.serving.served
    chosen = served.info.manifest["recommenders"]
    page = signed_in.get("/models").text
    validation = table(page, "validation")
    default_row = validation[validation.index('class="default"') :]
    default_row = default_row[: default_row.index("</tr>")]
    assert chosen["default"] in default_row and "default</span>" in default_row
    for name, scores in chosen["validation"].items():
        assert f">{name}" in validation
        assert f"{scores['ndcg@20']:.3f}" in validation
    churn = table(page, "churn")
    for row in served.intelligence.summary["churn"]["metrics"]:
        assert f'<th scope="row">{row["model"]}</th><td class="num">{row["auc"]:.3f}</td>' in churn
    clv = table(page, "clv")
    for name, value in served.intelligence.summary["clv"]["parameters"].items():
        assert f'<th scope="row">{name}</th><td class="num">{value:.3f}</td>' in clv


# -- local files, escaping, headers --------------------------------------------------------------


def test_plotly_is_served_locally_and_no_page_reaches_out(signed_in: TestClient) -> None:
    shipped = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    script = signed_in.get("/static/plotly.min.js")
    assert script.status_code == 200
    assert script.content == shipped.read_bytes()
    assert signed_in.get("/static/dashboard.js").status_code == 200
    assert signed_in.get("/static/dashboard.css").status_code == 200
    for path in [*PAGES, "/customers/1", "/items/no-such-item", "/login"]:
        text = signed_in.get(path).text
        sources = re.findall(r'<(?:script|link|img)[^>]*(?:src|href)="([^"]*)"', text)
        assert sources and all(s.startswith("/static/") for s in sources), (path, sources)
        assert "https://" not in text and "http://" not in text, path
        assert "cdn" not in text.lower(), path
    overview = signed_in.get("/").text
    assert '<script src="/static/plotly.min.js" defer></script>' in overview


def test_pages_escape_what_they_show(signed_in: TestClient) -> None:
    response = signed_in.get("/customers/<script>alert(1)</script>")
    assert response.status_code == 404
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


def test_pages_are_not_cached_or_framed(signed_in: TestClient) -> None:
    response = signed_in.get("/")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in response.headers["content-security-policy"]


def test_dashboard_is_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert all(p.startswith("/v1/") for p in paths)


def test_a_server_without_a_build_says_so(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    with Warehouse(db) as wh:
        key = create_key(wh, "read")
    with TestClient(create_app(ServeSettings(db))) as client:
        client.post("/login", data={"key": key})
        response = client.get("/")
        assert response.status_code == 503
        assert "No build yet" in response.text


# -- the figures, worked by hand -------------------------------------------------------------------


def test_sales_kpis_and_weekly_revenue_by_hand() -> None:
    nan = float("nan")
    events = pd.DataFrame(
        {
            "customer": [1, 1, 1, 0, 0, 1],
            "item": [0, 0, 0, 1, 0, 1],
            "basket": [2, 1, 1, 0, 0, 3],
            "timestamp": pd.to_datetime(["2024-01-01 10:00", "2024-02-10 09:00",
                                         "2024-02-10 09:00", "2024-03-30 12:00",
                                         "2024-03-30 12:00", "2024-03-31 08:00"]),
            "event_type": pd.Categorical(["purchase", "purchase", "view", "purchase",
                                          "purchase", "return"]),
            "quantity": [1.0, 1.0, 1.0, 2.0, 1.0, 1.0],
            "value": [7.0, 20.0, 0.0, nan, 10.0, 3.0],
        }
    )  # fmt: skip
    items = pd.DataFrame({"item_id": ["a", "b"], "price": [4.0, 2.5]})
    ds = SimpleNamespace(events=events, items=items, n_items=2, as_of=None)
    # The last day is 2024-03-31: the last 4 weeks are 03-04..03-31, the 4 before 02-05..03-03.
    # The unpriced purchase counts 2 x 2.50; the view and the return count nothing.
    found = {k.name: (k.total, k.recent, k.before, k.direction) for k in sales_kpis(ds)}
    assert found == {
        "revenue": (42.0, 15.0, 20.0, "down"),
        "customers": (2, 1, 1, "flat"),
        "baskets": (3, 1, 1, "flat"),
        "average_basket": (14.0, 15.0, 20.0, "down"),
    }
    weekly = weekly_revenue(ds)
    assert weekly.index[0] == pd.Timestamp("2024-01-01")  # a Monday
    assert weekly.index[-1] == pd.Timestamp("2024-03-25")
    assert len(weekly) == 13 and weekly.sum() == 42.0
    assert weekly[pd.Timestamp("2024-02-05")] == 20.0
    assert (weekly == 0).sum() == 10  # weeks without sales are there, at 0
    # With as_of, the last day is the day before it, whatever the events.
    cut = SimpleNamespace(events=events, items=items, n_items=2, as_of=pd.Timestamp("2024-04-29"))
    assert {k.name: k.recent for k in sales_kpis(cut)}["revenue"] == 0.0


def test_sales_are_computed_once_per_build():
    from tailor.serve.dashboard import kpis

    events = pd.DataFrame(
        {
            "customer": [0, 1], "item": [0, 0], "basket": [0, 1],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-08"]),
            "event_type": pd.Categorical(["purchase", "purchase"]),
            "quantity": [1.0, 1.0], "value": [2.0, 3.0], "weight": [1.0, 1.0],
        }
    )  # fmt: skip
    ds = SimpleNamespace(events=events, items=pd.DataFrame({"item_id": [1]}), n_items=1, as_of=None)
    first = kpis.build_sales("build-a", ds)
    assert kpis.build_sales("build-a", ds) is first
    assert first.purchases["spend"].tolist() == [2.0, 3.0]
    assert first.weekly.tolist() == [2.0, 3.0]
    kpis.build_sales("build-b", ds)
    kpis.build_sales("build-c", ds)
    assert kpis.build_sales("build-a", ds) is not first  # only the last two builds are kept
