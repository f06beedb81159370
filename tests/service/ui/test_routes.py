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


@pytest.mark.parametrize("path", ["/ui/nope", "/ui/train/extra", "/ui/modelsx"])
def test_any_other_path_is_a_real_404_with_the_shell_to_say_so(make_app, path: str) -> None:
    response = make_app().get(path)
    assert response.status_code == 404 and "/ui/static/app.js" in response.text
