"""Plotly figures for the dashboard, as JSON that ``static/dashboard.js`` draws with the
plotly.js the server itself serves (no CDN: the machines may be offline)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

ACCENT = "#1f5f8b"
SECOND = "#c26a1b"
LAYOUT = {
    "template": "plotly_white",
    "height": 320,
    "margin": {"l": 56, "r": 16, "t": 16, "b": 48},
    "font": {"family": "system-ui, sans-serif", "size": 13},
}


def weekly_revenue_chart(weekly: pd.Series) -> str:
    """A line of revenue per week (``weekly`` indexed by the week's Monday)."""
    fig = go.Figure(
        go.Scatter(
            x=[day.strftime("%Y-%m-%d") for day in weekly.index],
            y=[round(float(v), 2) for v in weekly.to_numpy()],
            mode="lines+markers",
            line={"color": ACCENT, "width": 2},
            name="revenue",
            hovertemplate="week of %{x}<br>revenue %{y:,.2f}<extra></extra>",
        ),
        layout={**LAYOUT, "yaxis": {"title": {"text": "revenue"}, "rangemode": "tozero"},
                "xaxis": {"title": {"text": "week (Monday)"}}},
    )  # fmt: skip
    return fig.to_json()


def segments_chart(segments: pd.DataFrame) -> str:
    """Bars of each RFM segment's share of customers and share of revenue."""
    names = segments["segment"].astype(str).tolist()
    fig = go.Figure(
        [
            go.Bar(
                x=names,
                y=[round(100 * float(v), 1) for v in segments["share"].to_numpy()],
                name="share of customers",
                marker_color=ACCENT,
                hovertemplate="%{x}: %{y:.1f}% of customers<extra></extra>",
            ),
            go.Bar(
                x=names,
                y=[round(100 * float(v), 1) for v in segments["revenue_share"].to_numpy()],
                name="share of revenue",
                marker_color=SECOND,
                hovertemplate="%{x}: %{y:.1f}% of revenue<extra></extra>",
            ),
        ],
        layout={**LAYOUT, "barmode": "group", "yaxis": {"title": {"text": "%"}},
                "legend": {"orientation": "h", "y": 1.12}},
    )  # fmt: skip
    return fig.to_json()
