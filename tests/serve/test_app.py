import os
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
from fastapi.testclient import TestClient

from asif.errors import SettingsError
from asif.serve.app import create_app
from asif.serve.dependencies import ServiceSettings
from asif.serve.watcher import TableWatcher
from tests.serve.conftest import anchor_batch, png, shape_image

LABELS = ["red circle", "green square", "blue triangle"]
TEMPLATES = ["a {}"]


def form(labels=LABELS, templates=TEMPLATES, **extra):
    """Multipart form fields; list values repeat the field."""
    return {"labels": labels, "templates": templates, **{k: str(v) for k, v in extra.items()}}


def upload(data: bytes, name: str = "x.png"):
    return {"image": (name, data, "image/png")}


def test_endpoints(shape_table, serve, red_circle_png):
    server = serve(shape_table, k=10, p=4.0)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        health = c.get("/health").json()
        assert health["status"] == "ok" and health["version"] == shape_table.version
        v = c.get("/version").json()
        assert v["version"] == shape_table.version and v["anchors"] == 27
        assert v["image_encoder"] == "efficientnet-lite0" and (v["k"], v["p"]) == (10, 4.0)
        assert v["pinned"] is False and v["update"] == "full"
        assert v["table"] == os.path.basename(shape_table.uri)  # no server path

        r = c.post("/classify", files=upload(red_circle_png), data=form(top=2))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["label"] in LABELS and len(body["top"]) == 2
        assert body["top"][0]["label"] == body["label"] and body["score"] > 0
        snapshot = server.server.config.app.state.live.snapshot
        assert list(snapshot.classifiers) == [(tuple(LABELS), tuple(TEMPLATES), "max")]
        comma = c.post("/classify", files=upload(red_circle_png), data={"labels": ",".join(LABELS)})
        assert {t["label"] for t in comma.json()["top"]} <= set(LABELS)
        unknown = c.post("/classify", files=upload(red_circle_png), data=form(threshold=2.0))
        assert unknown.json()["label"] == "unknown"

        ex = c.post("/explain", files=upload(red_circle_png), data=form(label="red circle"))
        assert ex.status_code == 200, ex.text
        ex = ex.json()
        assert ex["label"] == "red circle" and ex["prompt"] == "a red circle"
        assert ex["anchors"] and all(a["contribution"] > 0 for a in ex["anchors"])
        assert abs(sum(a["contribution"] for a in ex["anchors"]) - ex["score"]) < ex["score"]

        caps = c.post("/retrieve/captions", files=upload(red_circle_png), data={"top": "3"})
        assert caps.status_code == 200 and caps.json()["source"] == "anchors"
        assert len(caps.json()["captions"]) == 3
        cands = ["a red circle", "a blue square", "a green triangle"]
        ranked = c.post(
            "/retrieve/captions",
            files=upload(red_circle_png),
            data={"captions": cands, "top": "3"},
        ).json()
        assert ranked["source"] == "candidates"
        assert sorted(x["caption"] for x in ranked["captions"]) == sorted(cands)

        hits = c.post("/retrieve/anchors", json={"text": "a blue triangle", "top": 4}).json()
        assert len(hits["anchors"]) == 4 and hits["anchors"][0]["caption"] == "a blue triangle"
        assert c.get("/docs").status_code == 200
        assert "/classify" in c.get("/openapi.json").json()["paths"]


BAD_CLASSIFY = [
    (upload(b"this is not an image", "notes.txt"), form(), 415, "notes.txt"),
    (upload(b"", "empty.png"), form(), 400, "empty"),
    (upload(b"\x89PNG" + b"0" * 300_000, "big.png"), form(), 413, "upload limit"),
    (None, form(labels=["", " "]), 422, "labels are empty"),
    (None, form(labels=["cat", ""]), 422, "empty class name"),
    (None, form(strategy="median"), 422, "strategy"),
    (None, form(templates=["no placeholder"]), 422, "{}"),
]


def test_bad_requests_get_clear_4xx(shape_table, serve, red_circle_png):
    server = serve(shape_table, k=10)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for files, data, status, message in BAD_CLASSIFY:
            r = c.post("/classify", files=files or upload(red_circle_png), data=data)
            assert r.status_code == status, r.text
            assert message in r.json()["detail"]
        two = [("image", (name, red_circle_png)) for name in ("a.png", "b.png")]
        r = c.post("/classify", files=two, data=form())
        assert r.status_code == 422 and "the form has 2 image parts" in r.json()["detail"]
        r = c.post("/explain", files=upload(red_circle_png), data=form(label="dog"))
        assert r.status_code == 422 and "dog" in r.json()["detail"]
        assert c.post("/retrieve/anchors", json={"text": "  "}).status_code == 422
        assert c.post("/retrieve/anchors", json={}).status_code == 422
        r = c.post("/retrieve/captions", files=upload(b"GIF89a broken", "a.gif"))
        assert r.status_code == 415 and "a.gif" in r.json()["detail"]
        r = c.post("/retrieve/captions", files=upload(red_circle_png), data={"captions": [" "]})
        assert r.status_code == 422 and "empty" in r.json()["detail"]


def test_hot_swap_under_load(shape_table, serve, encoders, red_circle_png):
    server = serve(shape_table, k=10, watch_interval=0.1)
    old = shape_table.version
    failures, versions = [], []
    stop = threading.Event()

    def hammer():
        with httpx.Client(base_url=server.url, timeout=60) as c:
            while not stop.is_set():
                r = c.post("/classify", files=upload(red_circle_png), data=form())
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    versions.append((r.json()["version"], r.json()["anchors"]))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    batch = anchor_batch(encoders, [("red", "circle", s) for s in range(100, 110)])
    new = shape_table.upsert(batch).version
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=server.url, timeout=60) as c:
        while c.get("/version").json()["version"] != new and time.monotonic() < deadline:
            time.sleep(0.05)
        v = c.get("/version").json()
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
    assert not failures
    assert v["version"] == new and v["anchors"] == 37 and v["update"] == "incremental"
    assert (old, 27) in versions and (new, 37) in versions
    assert set(versions) == {(old, 27), (new, 37)}


def test_pinned_to_tag_never_moves(shape_table, serve, encoders, red_circle_png):
    shape_table.tag("prod")
    server = serve(shape_table, k=10, version="prod", watch_interval=0.1)
    shape_table.upsert(anchor_batch(encoders, [("blue", "square", 200)]))
    time.sleep(0.5)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        v = c.get("/version").json()
        assert v["pinned"] and v["tag"] == "prod" and v["anchors"] == 27 and v["tags"] == ["prod"]
        assert v["version"] == shape_table.tags()["prod"] != shape_table.version
        r = c.post("/classify", files=upload(png(shape_image("blue", "square", 3))), data=form())
        assert r.json()["version"] == v["version"]


def test_openapi_keeps_paths_models_and_errors():
    app = create_app(SimpleNamespace(pinned=True), watch_interval=None)
    paths = app.openapi()["paths"]
    content = {
        (path, method): op["responses"]["200"]["content"]
        for path, ops in paths.items()
        for method, op in ops.items()
    }
    thumbnail = content.pop(("/anchors/{anchor_id}/thumbnail", "get"))
    assert set(thumbnail) == {"image/webp", "image/jpeg", "image/png", "image/gif"}
    models = {k: c["application/json"]["schema"]["$ref"] for k, c in content.items()}
    assert {k: ref.rsplit("/", 1)[1] for k, ref in models.items()} == {
        ("/classify", "post"): "ClassifyResponse",
        ("/explain", "post"): "ExplainResponse",
        ("/retrieve/captions", "post"): "CaptionsResponse",
        ("/retrieve/anchors", "post"): "AnchorsResponse",
        ("/anchors/{anchor_id}", "get"): "AnchorResponse",
        ("/evaluations", "get"): "EvaluationsResponse",
        ("/health", "get"): "HealthResponse",
        ("/ready", "get"): "HealthResponse",
        ("/version", "get"): "VersionResponse",
    }
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)
    for path, method in models:
        codes = set(paths[path][method]["responses"])
        expected = {"200", "400", "413", "415", "422"} if method == "post" else {"200"}
        if path.startswith("/anchors/"):
            expected = {"200", "404", "422"}
        if path == "/evaluations":
            expected = {"200", "422"}
        assert codes == (expected | {"503"} if path == "/ready" else expected)


def test_watcher_only_when_following_the_table():
    assert create_app(SimpleNamespace(pinned=True)).state.watcher is None
    assert create_app(SimpleNamespace(pinned=False), watch_interval=None).state.watcher is None
    with pytest.raises(SettingsError):
        create_app(SimpleNamespace(pinned=False), watch_interval=-1.0)


def test_health_degrades_and_ready_refuses_while_the_table_cannot_be_read(client):
    """Issue 13, item 6: a failing watcher is not "ok", and its error carries no paths."""
    watcher = TableWatcher(client.app.state.live, interval=60)
    client.app.state.watcher = watcher
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/ready").status_code == 200
    watcher.live = SimpleNamespace(refresh=lambda: 1 / 0, uri="/srv/secret/lancedb")
    rounds = iter([False, True])  # one round, then stop
    watcher._stop.wait = lambda _: next(rounds)  # type: ignore[method-assign]
    watcher._run()
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "/srv" not in health["watcher_error"]
    assert client.get("/ready").status_code == 503


def test_bodies_over_the_limit_are_refused_while_they_stream(shape_table, encoders):
    """Issue 13, item 4: nothing past the limit is read or spooled, JSON bodies included."""
    from asif.serve.live_model import LiveModel

    live = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1])
    app = create_app(live, watch_interval=None, settings=ServiceSettings(max_upload_bytes=1000))
    limit = app.state.settings.max_body_bytes
    with TestClient(app) as c:
        big = b'{"text": "' + b"a" * limit + b'"}'
        r = c.post("/retrieve/anchors", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["detail"]
        chunks = iter([b'{"text": "', b"a" * limit, b'"}'])  # no Content-Length: counted
        r = c.post(
            "/retrieve/anchors", content=chunks, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        r = c.post(
            "/retrieve/anchors", content=b"{}",
            headers={"content-type": "application/json", "content-length": "12abc"},
        )  # fmt: skip
        assert r.status_code == 400 and "Content-Length" in r.json()["detail"]


def test_images_over_the_pixel_limit_are_413(shape_table, encoders, red_circle_png):
    from asif.serve.live_model import LiveModel

    live = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1])
    app = create_app(live, watch_interval=None, settings=ServiceSettings(max_pixels=1000))
    with TestClient(app) as c:
        r = c.post("/classify", files=upload(red_circle_png, "wide.png"), data=form())
        assert r.status_code == 413 and "wide.png" in r.json()["detail"], r.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"labels": [",".join(f"c{i}" for i in range(1001))]}, "1001 labels given; at most 1000"),
        ({"labels": ["x" * 1001]}, "labels of 1001 characters"),
        ({"labels": ["a", "b"], "templates": [f"{{}} {i}" for i in range(101)]}, "101 templates"),
    ],
)
def test_label_and_template_limits(client, data, message):
    r = client.post(
        "/classify", files={"image": ("x.png", png(shape_image("red", "circle")))}, data=data
    )
    assert r.status_code == 422 and message in r.json()["detail"], r.text
