import pytest

LABELS = ["red circle", "green square", "blue triangle"]
HOSTILE = [
    "{0.__class__}", "{:>99999999}", "{!r}", "{} and {}", "{", "a {name}",
    "{{}}{0:>100000000}", "{{}} {0.__class__.__base__.__subclasses__}", "{} {name}", "{}{}",
    "{} {", "{} }",
]  # fmt: skip


def post(client, path, image, **data):
    return client.post(path, files={"image": ("x.png", image, "image/png")}, data=data)


@pytest.mark.parametrize("path", ["/classify", "/explain"])
def test_hostile_templates_are_422(client, red_circle_png, path):
    snapshot = client.app.state.live.snapshot
    for template in HOSTILE:
        r = post(client, path, red_circle_png, labels=LABELS, templates=["a {}", template])
        assert r.status_code == 422, (template, r.text)
        assert repr(template) in r.json()["detail"]
    assert not snapshot.classifiers


def test_literal_braces_and_mean_strategy_are_served(client, red_circle_png):
    r = post(
        client, "/explain", red_circle_png,
        labels=LABELS, templates=["a {{drawn}} {}", "a {}"], strategy="mean", label="red circle",
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["label"] == "red circle" and r.json()["prompt"].startswith("mean of 2")


def test_unknown_label_is_422(client, red_circle_png):
    r = post(client, "/explain", red_circle_png, labels=LABELS, label="dog")
    assert r.status_code == 422 and "'dog'" in r.json()["detail"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"labels": ["cat", "dog,cat"]}, "labels repeat ['cat']"),
        ({"labels": LABELS, "threshold": "nan"}, "threshold"),
        ({"labels": LABELS, "threshold": "inf"}, "threshold"),
    ],
)
def test_repeated_labels_and_non_finite_thresholds_are_422(client, red_circle_png, data, message):
    r = post(client, "/classify", red_circle_png, **data)
    assert r.status_code == 422 and message in r.text, r.text
