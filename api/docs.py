"""The API's documentation page: Swagger UI from an installed package, no network needed.

The page's script is a file of this package (the back office's Content-Security-Policy
runs no inline script), and Swagger UI's own files come from the swagger-ui-bundle
package, served here.
"""

from __future__ import annotations

from typing import Any

import swagger_ui_bundle
from flask import Blueprint, Flask, render_template, send_from_directory

from api.core import PREFIX, PROBLEM_TYPES

bp = Blueprint("api_docs", __name__, url_prefix=f"{PREFIX}/docs",
               template_folder="templates", static_folder="static",
               static_url_path="/page")


@bp.route("")
def page() -> Any:
    """The documentation page: the OpenAPI description in Swagger UI, and the problems."""
    return render_template("api/docs.html", spec_url=f"{PREFIX}/openapi.json",
                           problems=PROBLEM_TYPES)


@bp.route("/ui/<path:filename>")
def ui(filename: str) -> Any:
    """Swagger UI's files, from the installed package."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=3600)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
