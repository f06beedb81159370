"""service/ui/routes.py in process: the page's shell for every page app.js draws, a real 404 for any other path."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "path",
    [
        "/ui",
        "/ui/",
        "/ui/runs",
        "/ui/runs/run_1",
        "/ui/runs/titanic_1_ab/",
        "/ui/models",
        "/ui/models/titanic",
        "/ui/data",
        "/ui/train",
    ],
)
def test_every_page_the_script_draws_gets_the_shell(make_app, path: str) -> None:
    response = make_app().get(path)
    assert response.status_code == 200 and "/ui/static/app.js" in response.text


@pytest.mark.parametrize(
    "path", ["/ui/nope", "/ui/train/extra", "/ui/modelsx", "/ui/models/titanic/anything/deeper", "/ui/runs/run_1/x"]
)
def test_any_other_path_is_a_real_404_with_the_shell_to_say_so(make_app, path: str) -> None:
    response = make_app().get(path)
    assert response.status_code == 404 and "/ui/static/app.js" in response.text


def test_the_favicon_is_there_for_every_page_without_a_token(make_app) -> None:
    """Issue 26, item 14: browsers ask /favicon.ico on every page; it answered 404."""
    response = make_app(token=None, client_host="10.1.2.3").get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    shell = make_app().get("/ui/")
    assert 'rel="icon"' in shell.text
