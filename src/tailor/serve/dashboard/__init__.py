"""The managers' dashboard: server-rendered pages (Jinja2) over the build the API serves, with
Plotly charts drawn by the plotly.js that ships inside the ``plotly`` package (no CDN).

``create_app`` includes :data:`router` and mounts :func:`static_files` at ``/static``.
"""

from tailor.serve.dashboard.routes import STATIC, router, static_files

__all__ = ["STATIC", "router", "static_files"]
