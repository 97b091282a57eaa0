import pytest

from asif.errors import EncoderMismatchError, SettingsError
from asif.store.location import TableLocation, public_uri, storage_options_from_env
from tests.store.rows import ENC, make_batch

AWS = {
    "AWS_ACCESS_KEY_ID": "key",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
}


def test_storage_options_from_env():
    assert storage_options_from_env({}) is None
    assert storage_options_from_env(AWS) == {
        "aws_access_key_id": "key",
        "aws_secret_access_key": "secret",
        "aws_region": "us-east-1",
        "aws_endpoint": "http://127.0.0.1:9000",
        "allow_http": "true",  # a plain-http endpoint
    }
    https = {**AWS, "AWS_ENDPOINT_URL": "https://s3.example.com"}
    assert "allow_http" not in storage_options_from_env(https)
    override = {**AWS, "ASIF_STORAGE_OPTIONS": '{"aws_region": "eu-west-1", "timeout": 30}'}
    options = storage_options_from_env(override)
    assert options["aws_region"] == "eu-west-1" and options["timeout"] == "30"
    with pytest.raises(SettingsError, match="must be a JSON object"):
        storage_options_from_env({"ASIF_STORAGE_OPTIONS": "[1]"})
    with pytest.raises(SettingsError, match="not valid JSON"):
        storage_options_from_env({"ASIF_STORAGE_OPTIONS": "{oops"})


def test_location_from_env_prefers_given_options():
    from_env = TableLocation.from_env("s3://b/db", env=AWS)
    assert from_env.name == "anchors" and from_env.storage_options["aws_access_key_id"] == "key"
    given = TableLocation.from_env("s3://b/db", "t", {"aws_region": "x"}, env=AWS)
    assert given.storage_options == {"aws_region": "x"}
    assert TableLocation.from_env("db", env={}).storage_options is None
    assert TableLocation("db", storage_options={}).storage_options is None


def test_location_keeps_credentials_out_of_its_repr():
    location = TableLocation.from_env("s3://b/db", env=AWS)
    assert "secret" not in repr(location) and "s3://b/db" in repr(location)


def test_location_opens_the_table(tmp_path):
    location = TableLocation(str(tmp_path / "db"), "things")
    table = location.create_or_open(**ENC)
    table.upsert(make_batch(0, 3))
    table.tag("three")
    again = location.open()
    assert (again.uri, again.name, len(again)) == (location.uri, "things", 3)
    assert not again.read_only
    assert location.open("three").read_only and len(location.open(1)) == 0
    assert location.create_or_open(**ENC).version == table.version
    with pytest.raises(EncoderMismatchError):
        location.create_or_open(**{**ENC, "text_encoder": "other"})


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("/srv/data/asif/lancedb", "lancedb"),
        ("relative/lancedb/", "lancedb"),
        ("file:///srv/data/lancedb", "lancedb"),
        ("s3://user:secret@bucket/anchors?token=abc", "s3://bucket/anchors"),
        ("s3://bucket:9000/db", "s3://bucket:9000/db"),
    ],
)
def test_public_uri_shows_no_server_paths_or_credentials(uri, shown):
    assert public_uri(uri) == shown
