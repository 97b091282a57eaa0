import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from asif.errors import (
    EmptyInputError,
    ImageDecodeError,
    LabelError,
    StrategyError,
    TemplateError,
)
from asif.serve.errors import ERRORS, install_error_handlers, status_code
from asif.serve.schemas import ErrorResponse

RAISED = {
    "decode": ImageDecodeError("uploaded file 'a.txt' is not an image"),
    "template": TemplateError("template 'x' must contain exactly one '{}'"),
    "strategy": StrategyError("strategy must be one of ('max', 'mean'), got 'median'"),
    "label": LabelError("label 'dog' is not one of ['cat']"),
    "empty": EmptyInputError("the query text is blank"),
}


@pytest.fixture
def client():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/raise/{name}")
    def raise_it(name: str) -> None:
        if name == "http":
            raise HTTPException(413, "too large")
        if name == "bug":
            raise ValueError("a bug, not the user's mistake")
        raise RAISED[name]

    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("name", list(RAISED))
def test_asif_errors_become_detail_answers(client, name):
    r = client.get(f"/raise/{name}")
    assert r.status_code == (415 if name == "decode" else 422)
    assert r.json() == {"detail": str(RAISED[name])}


def test_other_errors_are_not_mapped(client):
    assert client.get("/raise/http").json() == {"detail": "too large"}
    assert client.get("/raise/http").status_code == 413
    assert client.get("/raise/bug").status_code == 500


def test_status_code():
    assert status_code(ImageDecodeError("x")) == 415
    assert status_code(TemplateError("x")) == 422


def test_documented_errors_use_the_error_model():
    assert set(ERRORS) == {400, 413, 415, 422}
    assert all(v == {"model": ErrorResponse} for v in ERRORS.values())
