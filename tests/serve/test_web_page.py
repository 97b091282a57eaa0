"""Issue 17, item 4: the web page of `asif serve`, driven in Debian's headless chromium.

The service runs on 127.0.0.1 over a small real table; the page is used as a person would:
pick an image, type labels, read the answer and the anchor pairs behind it, explain another
label from the keyboard, search a text, see the service move to a new version. Each state
is saved as a screenshot (in the test's folder, and in `$ASIF_SCREENSHOT_DIR` if set: the
README's picture is made so, see docs/serve.md).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import lancedb
import pyarrow as pa
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from asif.evaluation.evaluations_table import EvaluationsTable
from asif.serve.access import Access
from asif.serve.app import create_app
from asif.serve.live_model import LiveModel
from asif.store.schema import THUMBNAIL, anchor_schema
from asif.store.table import AnchorTable
from tests.serve.conftest import RunningServer, anchor_batch, png, shape_image

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TOKEN = "s3cret-token"
LAPTOP, PHONE = (1280, 1000), (390, 844)
WAIT = 60  # seconds: the first classification embeds every prompt on 2 CPU cores


@pytest.fixture
def browser(tmp_path) -> Iterator[WebDriver]:
    """Headless chromium (the flags keep it off this machine's closed network)."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("Debian's chromium and chromium-driver are missing: run scripts/setup.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'chrome'}",
        f"--window-size={LAPTOP[0]},{LAPTOP[1]}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture
def shoot(tmp_path, browser) -> Callable[[str], Path]:
    """shoot(name) saves the page as name.png; returns the path."""
    folders = [tmp_path / "screenshots"]
    if os.environ.get("ASIF_SCREENSHOT_DIR"):
        folders.append(Path(os.environ["ASIF_SCREENSHOT_DIR"]))

    def save(name: str) -> Path:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            assert browser.save_screenshot(str(folder / f"{name}.png"))
        return folders[0] / f"{name}.png"

    return save


def wait_for(browser: WebDriver, condition: Callable[[], object], what: str) -> None:
    try:
        WebDriverWait(
            browser, WAIT, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException]
        ).until(lambda _: condition())
    except TimeoutException:
        error = browser.find_element(By.ID, "error").text
        raise AssertionError(f"timed out waiting for {what}; the page's error: {error!r}") from None


def by_id(browser: WebDriver, element_id: str) -> WebElement:
    return browser.find_element(By.ID, element_id)


def cards(browser: WebDriver, list_id: str) -> list[WebElement]:
    return browser.find_elements(By.CSS_SELECTOR, f"#{list_id} li.anchor")


THUMBNAILS_SHOWN = """
const cards = document.querySelectorAll(`#${arguments[0]} li.anchor`);
const images = [...document.querySelectorAll(`#${arguments[0]} li.anchor img`)];
return cards.length > 0 && images.length === cards.length && images.every(
  (img) => img.complete && img.naturalWidth > 0 && img.src.startsWith("blob:"));
"""


def thumbnails_shown(browser: WebDriver, list_id: str) -> bool:
    """Every card's thumbnail is a decoded image from a blob fetched with the token (checked
    in one script: the page may replace the cards meanwhile)."""
    return browser.execute_script(THUMBNAILS_SHOWN, list_id)


def classify(browser: WebDriver, image: Path, labels: str) -> None:
    by_id(browser, "image-input").send_keys(str(image))
    field = by_id(browser, "labels")
    field.clear()
    field.send_keys(labels)
    by_id(browser, "classify-button").click()


def no_horizontal_scroll(browser: WebDriver) -> bool:
    return browser.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def evaluated(uri: str) -> None:
    EvaluationsTable.open(uri).add(
        [
            {
                "settings_key": "k1", "evaluated_at": datetime(2026, 12, 1, tzinfo=UTC),
                "study": "main", "task": "zeroshot_classification", "table_name": "anchors",
                "table_version": 2, "table_tags": "prod", "benchmark": "shapes", "n_images": 90,
                "k": 10, "p": 16.0, "acc1": 0.8, "acc5": None,
            }
        ]
    )  # fmt: skip


def test_the_page_shows_answers_explanations_and_search_with_thumbnails(
    shape_table, encoders, browser, shoot, tmp_path
):
    evaluated(shape_table.uri)
    shape_table.tag("prod", 2)
    live = LiveModel(shape_table.uri, image_encoder=encoders[0], text_encoder=encoders[1], k=10)
    image = tmp_path / "red-circle.png"
    image.write_bytes(png(shape_image("red", "circle", seed=11)))
    app = create_app(live, watch_interval=0.2, access=Access(TOKEN))
    with RunningServer(app) as server:
        browser.get(server.url + "/")
        status = by_id(browser, "status")
        wait_for(browser, lambda: "access token" in status.text, "the request for a token")
        assert by_id(browser, "access").get_attribute("open") is not None
        by_id(browser, "token").send_keys(TOKEN + Keys.ENTER)
        wait_for(browser, lambda: "27 anchors" in status.text, "the served model")
        assert status.text.startswith("Version 2 · tag prod · 27 anchors · efficientnet-lite0")
        wait_for(browser, lambda: by_id(browser, "evaluations").is_displayed(), "evaluations")
        [row] = browser.find_elements(By.CSS_SELECTOR, "#evaluations tbody tr")
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert cells[:6] == ["2 (prod)", "shapes", "90", "80.0%", "–", "10 / 16"] and cells[6]
        shoot("1-ready")

        classify(browser, image, "circle, square, triangle")
        answer = by_id(browser, "answer")
        wait_for(browser, lambda: answer.text.startswith("circle"), "the answer")
        bars = browser.find_elements(By.CSS_SELECTOR, "#scores button.bar")
        assert sorted(b.get_attribute("data-label") for b in bars) == [
            "circle", "square", "triangle",
        ]  # fmt: skip
        wait_for(browser, lambda: thumbnails_shown(browser, "anchors"), "the anchor thumbnails")
        assert bars[0].get_attribute("aria-pressed") == "true"
        explained = cards(browser, "anchors")
        assert "circle" in explained[0].find_element(By.CLASS_NAME, "caption").text
        assert "% of the score" in explained[0].find_element(By.CLASS_NAME, "share").text
        shoot("2-answer")

        # Keyboard: the answer heading has focus; Tab walks the bars, Enter explains one.
        assert browser.switch_to.active_element == answer
        actions = webdriver.ActionChains(browser)
        actions.send_keys(Keys.TAB).send_keys(Keys.TAB).perform()
        second = browser.switch_to.active_element
        label = second.get_attribute("data-label")
        assert second == bars[1] and label != "circle"
        second.send_keys(Keys.ENTER)
        title = by_id(browser, "explanation-title")
        wait_for(browser, lambda: f'Why "{label}"' in title.text, "the other label's explanation")
        assert second.get_attribute("aria-pressed") == "true"
        wait_for(browser, lambda: thumbnails_shown(browser, "anchors"), "its thumbnails")
        shoot("3-explain-another-label")

        details = cards(browser, "anchors")[0].find_element(By.TAG_NAME, "details")
        details.find_element(By.TAG_NAME, "summary").click()
        wait_for(browser, lambda: "96 × 96 px" in details.text, "the anchor's source")

        query = by_id(browser, "query")
        query.send_keys("a blue triangle" + Keys.ENTER)
        wait_for(browser, lambda: thumbnails_shown(browser, "search-results"), "search results")
        found = [
            c.find_element(By.CLASS_NAME, "caption").text for c in cards(browser, "search-results")
        ]
        assert found[:3] == ["a blue triangle"] * 3 and len(found) == 10  # k = 10
        shoot("4-search")

        shape_table.upsert(anchor_batch(encoders, [("green", "circle", 300)]))
        notice = by_id(browser, "version-notice")
        wait_for(browser, lambda: notice.is_displayed(), "the new version")
        assert "Now serving version 3 (was 2)" in notice.text and "28 anchors" in status.text

        by_id(browser, "options").find_element(By.TAG_NAME, "summary").click()
        threshold = by_id(browser, "threshold")
        threshold.send_keys("0.99")
        by_id(browser, "classify-button").click()
        wait_for(browser, lambda: answer.text.startswith("unknown"), "the unknown answer")
        assert "is below 0.99" in answer.text
        wait_for(browser, lambda: thumbnails_shown(browser, "anchors"), "the best label's anchors")
        bars = browser.find_elements(By.CSS_SELECTOR, "#scores button.bar")
        assert all("below" in b.get_attribute("class") for b in bars)
        assert "(below threshold)" in bars[0].text
        shoot("5-unknown")
        threshold.clear()

        templates = by_id(browser, "templates")
        templates.send_keys("a photo of {0.__class__}")
        by_id(browser, "classify-button").click()
        error = by_id(browser, "error")
        wait_for(browser, lambda: error.is_displayed(), "the API's error")
        assert "template" in error.text and "{0.__class__}" in error.text
        shoot("6-error")

        browser.set_window_size(*PHONE)
        templates.clear()
        by_id(browser, "classify-button").click()
        wait_for(browser, lambda: "version 3" in answer.text, "the answer from version 3")
        wait_for(browser, lambda: thumbnails_shown(browser, "anchors"), "its anchors on a phone")
        assert not error.is_displayed()
        assert no_horizontal_scroll(browser)
        shoot("7-phone")


def old_table(tmp_path: Path, encoders, rows) -> AnchorTable:
    """A table as releases before thumbnails made it: no thumbnail column."""
    image_encoder, text_encoder = encoders
    schema = anchor_schema(image_encoder.dim, text_encoder.dim, image_encoder.name,
                           text_encoder.name)  # fmt: skip
    old = schema.remove(schema.get_field_index(THUMBNAIL))
    uri = str(tmp_path / "old-db")
    lancedb.connect(uri).create_table("anchors", rows.drop_columns([THUMBNAIL]).cast(old))
    return AnchorTable.open(uri)


HOSTILE_CAPTION = "<img src=x onerror=\"document.title='pwned'\"> a green square"
HOSTILE_URL = "javascript:document.title='pwned'"

DROP = """
const [base64, name] = arguments;
const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
const files = new DataTransfer();
files.items.add(new File([bytes], name, {type: "image/png"}));
const zone = document.getElementById("drop-zone");
zone.dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true, cancelable: true}));
"""


def test_a_table_without_thumbnails_shows_captions_and_urls(
    tmp_path, encoders, shape_rows, browser, shoot
):
    """Also: an image dropped on the page, and a caption and url from the table that are
    markup and script, shown as text and never run or linked."""
    hostile = anchor_batch(encoders, [("green", "square", 77)])
    hostile = hostile.set_column(1, "url", [[HOSTILE_URL]]).set_column(
        2, "caption", [[HOSTILE_CAPTION]]
    )
    rows = pa.concat_tables([shape_rows, hostile])
    table = old_table(tmp_path, encoders, rows)
    assert not table.has_thumbnails
    live = LiveModel(table.uri, image_encoder=encoders[0], text_encoder=encoders[1], k=10)
    image = png(shape_image("green", "square", seed=12))
    with RunningServer(create_app(live, watch_interval=None)) as server:
        browser.get(server.url + "/")
        status = by_id(browser, "status")
        wait_for(browser, lambda: "28 anchors" in status.text, "the served model")
        assert by_id(browser, "evaluations-empty").is_displayed()
        browser.execute_script(DROP, base64.b64encode(image).decode(), "dropped.png")
        assert by_id(browser, "drop-text").text == "dropped.png"
        by_id(browser, "labels").send_keys("circle, square, triangle")
        by_id(browser, "classify-button").click()
        wait_for(browser, lambda: cards(browser, "anchors"), "the explanation")
        assert by_id(browser, "answer").text.startswith("square")
        captions = []
        for card in cards(browser, "anchors"):
            assert card.find_element(By.CLASS_NAME, "picture").text == "no thumbnail"
            url = card.find_element(By.CLASS_NAME, "url")
            captions.append(card.find_element(By.CLASS_NAME, "caption").text)
            if url.text == HOSTILE_URL:
                assert url.tag_name == "span" and url.get_attribute("href") is None
            else:
                assert url.tag_name == "a" and url.text.startswith("http://127.0.0.1/")
        assert HOSTILE_CAPTION in captions
        assert not browser.find_elements(By.CSS_SELECTOR, "#anchors img")
        assert browser.title != "pwned"
        shoot("without-thumbnails")


def test_the_page_needs_no_build_and_is_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for asset, kind in (("static/app.js", "javascript"), ("static/style.css", "text/css")):
        assert f'"{asset}"' in page.text
        r = client.get("/" + asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert client.get("/static/../pyproject.toml").status_code == 404
