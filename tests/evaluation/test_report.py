import base64

from asif.evaluation.report import image_markdown, markdown_table


def test_markdown_table():
    md = markdown_table([{"a": 1, "b": 0.123456, "c": "x|y"}, {"a": None}], ("a", "b", "c"))
    assert md.splitlines() == [
        "| a | b | c |",
        "|---|---|---|",
        "| 1 | 0.1235 | x\\|y |",
        "|  |  |  |",
    ]


def test_image_markdown_inlines_the_png(tmp_path):
    path = tmp_path / "p.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\nrest")
    md = image_markdown(path, "plot")
    data = md.split("base64,", 1)[1].split(")", 1)[0]
    assert base64.b64decode(data) == path.read_bytes()
    assert str(path) in md
