"""/docs: the API reference for people, Swagger UI over /openapi.json, served from the files a pip package
ships (no CDN: it works where the server's network does)."""

from __future__ import annotations

import tornado.web
from openapi_ui_bundles import swagger_ui

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
ASSETS_DIRECTORY = str(swagger_ui.static_path)

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>WeChat distribution backend: API reference</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true}});
</script>
</body>
</html>
"""


class DocsHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(_PAGE)


def docs_routes() -> list[tuple]:
    return [(DOCS_PATH, DocsHandler),
            (rf"{ASSETS_PATH}/(.*)", tornado.web.StaticFileHandler, {"path": ASSETS_DIRECTORY})]
