"""Issue 13, item 7: an optional bearer token, CORS origins, and no open binding by accident."""

import pytest
from fastapi.testclient import TestClient

from asif.errors import SettingsError
from asif.serve.access import Access, check_bind, is_loopback
from asif.serve.app import create_app
from asif.serve.live_model import LiveModel


@pytest.fixture
def guarded(shape_table, encoders):
    live = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1])
    access = Access("s3cret", ("https://app.example",))
    with TestClient(create_app(live, watch_interval=None, access=access)) as c:
        yield c


def test_every_endpoint_but_liveness_needs_the_token(guarded):
    assert guarded.get("/health").status_code == 200
    for path in ("/version", "/ready"):
        assert guarded.get(path).status_code == 401
        assert guarded.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert guarded.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    r = guarded.post("/retrieve/anchors", json={"text": "a red circle"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    ok = guarded.post(
        "/retrieve/anchors",
        json={"text": "a red circle"},
        headers={"Authorization": "Bearer s3cret"},
    )
    assert ok.status_code == 200


def test_anchors_and_evaluations_need_the_token_the_page_does_not(guarded, shape_rows):
    anchor = shape_rows["id"][0].as_py()
    for path in (f"/anchors/{anchor}", f"/anchors/{anchor}/thumbnail", "/evaluations"):
        assert guarded.get(path).status_code == 401
        assert guarded.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    for path in ("/", "/static/app.js", "/static/style.css"):
        assert guarded.get(path).status_code == 200


def test_cors_answers_only_configured_origins(guarded):
    preflight = {"Access-Control-Request-Method": "POST"}
    mine = guarded.options("/classify", headers={"Origin": "https://app.example", **preflight})
    assert mine.headers["access-control-allow-origin"] == "https://app.example"
    other = guarded.options("/classify", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


def test_binding_beyond_loopback_needs_a_token_or_consent():
    for host in ("127.0.0.1", "localhost", "::1", "[::1]"):
        assert is_loopback(host)
        check_bind(host, Access())
    with pytest.raises(SettingsError, match="refusing to serve on 0.0.0.0 without a token"):
        check_bind("0.0.0.0", Access())
    check_bind("0.0.0.0", Access("t"))
    check_bind("0.0.0.0", Access(), allow_unauthenticated=True)
    with pytest.raises(SettingsError, match="empty"):
        Access(" ")


def test_asif_serve_refuses_before_loading_anything(tmp_path, capsys):
    from asif.cli import main

    assert main(["serve", "--table", str(tmp_path / "nowhere"), "--host", "0.0.0.0"]) == 2
    assert "without a token" in capsys.readouterr().err
