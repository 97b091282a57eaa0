import pytest


@pytest.mark.parametrize("body", [b'{"text": "a", "top": NaN}', b'{"text": "a", "top": 1e400}'])
def test_non_finite_json_numbers_are_422_not_500(client, body):
    """The 422 does not echo the input, which JSON cannot hold (issue 13, item 5)."""
    headers = {"content-type": "application/json"}
    r = client.post("/retrieve/anchors", content=body, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "top"]
