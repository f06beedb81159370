"""GET /docs: Swagger UI served from the service itself (the swagger-ui-bundle-v2 package), nothing from a CDN.

FastAPI's default page loads an unpinned swagger-ui from a CDN, on the same origin as the
dashboard's session cookie, with an inline script; here the assets come from the installed
package and the page's only script of its own is a file, so /docs runs under a strict
Content-Security-Policy of its own (service/http/middleware.py).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>AML control plane API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/ui/static/docs.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    app.mount("/docs/assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(PAGE)
