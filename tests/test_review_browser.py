"""The review pages in a real browser (headless Chromium through Selenium) against the real Neo4j and Redis: sign in,
open a video, see the evidence and the keyframes, rate it, see the agreement table change, and a post without a CSRF
token refused.

A missing browser fails with the command that installs it (like a stopped Neo4j), it is not skipped.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from api.db import close_graph
from browser import headless_chromium, serve_app
from kg_builder.graph import Graph
from kg_builder.store.ratings import video_ratings
from api.accounts import add_rater
from review_support import app_settings, delete_review_data, media_video, profiled_video

PREFIX = "browsertest_"


@pytest.fixture(scope="module")
def site(graph: Graph, built_kg: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    delete_review_data(graph, PREFIX)
    root = tmp_path_factory.mktemp("media")
    video_id = f"{PREFIX}video"
    profiled_video(graph, video_id, media_video(root, "video"), quality_probs=(0.05, 0.1, 0.2, 0.5, 0.15))
    reviewer = add_rater(graph, f"{PREFIX}reviewer")  # with the one-time password
    app = create_app(app_settings(root), {"TESTING": True, "RATELIMIT_KEY_PREFIX": f"ovptest-{uuid.uuid4().hex}"})
    with serve_app(app) as base, headless_chromium() as driver:
        yield {"base": base, "driver": driver, "video": video_id, "reviewer": reviewer}
    close_graph(app)
    delete_review_data(graph, PREFIX)


def wait_for(driver: Any, selector: str, timeout: float = 20.0) -> Any:
    return WebDriverWait(driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))


def model_gqs_pairs(driver: Any, base: str) -> int:
    driver.get(f"{base}/ui/agreement?lang=en")
    row = wait_for(driver, '#agreement-model tr[data-scale="gqs"]')
    return int(row.find_element(By.CSS_SELECTOR, "td.pairs").text)


def test_review_in_a_browser(site: dict[str, Any], graph: Graph) -> None:
    driver, base, video = site["driver"], site["base"], site["video"]
    reviewer = site["reviewer"]

    # sign in with the one-time password, then choose one's own
    driver.get(f"{base}/ui/sign-in?lang=en")
    driver.find_element(By.ID, "name").send_keys(reviewer.name)
    driver.find_element(By.ID, "password").send_keys(reviewer.password)
    driver.find_element(By.ID, "sign-in").click()
    wait_for(driver, "#save-password")
    assert "/ui/password" in driver.current_url
    driver.find_element(By.ID, "current").send_keys(reviewer.password)
    driver.find_element(By.ID, "new").send_keys("my own long password")
    driver.find_element(By.ID, "repeat").send_keys("my own long password")
    driver.find_element(By.ID, "save-password").click()
    assert "Password saved" in wait_for(driver, ".flash").text
    assert wait_for(driver, "#reviewer-name").text == reviewer.name

    pairs_before = model_gqs_pairs(driver, base)

    # open the video: evidence, highlighted mentions, keyframes that loaded from the media file
    driver.get(f"{base}/ui/videos/{video}")
    assert "SYNTHETIC" in wait_for(driver, "#video-title").text
    evidence = driver.find_element(By.ID, "evidence-1").text
    assert "named in the text" in evidence and "inferred from phenotypes" in evidence and "keyframes added" in evidence
    marks = driver.find_elements(By.CSS_SELECTOR, "#texts a.mention")
    assert {m.text for m in marks} >= {"青光眼", "近视"}
    assert any("negated" in m.get_attribute("class") for m in marks)
    images = driver.find_elements(By.CSS_SELECTOR, "#keyframes img")
    assert len(images) == 2
    WebDriverWait(driver, 30).until(lambda d: all(
        d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in images))
    assert "attention 70%" in driver.find_element(By.ID, "keyframes").text
    assert driver.find_element(By.ID, "player").get_attribute("src").endswith(f"/ui/media/{video}")

    # rate it
    driver.find_element(By.ID, "gqs-4").click()
    for i in range(1, 6):
        driver.find_element(By.CSS_SELECTOR, f'input[name="discern_{i}"][value="{"yes" if i % 2 else "no"}"]').click()
    driver.find_element(By.ID, "judge-diseases").click()
    driver.find_element(By.ID, "note").send_keys("clear explanation; no sources")
    driver.find_element(By.ID, "save-rating").click()
    assert "Rating saved" in wait_for(driver, ".flash").text
    table = driver.find_element(By.ID, "rating-table").text
    assert reviewer.name in table and "counts" in table
    (stored,) = video_ratings(graph, video)
    assert stored.gqs == 4 and stored.discern == (True, False, True, False, True)
    assert stored.diseases == ("OVP:glaucoma",) and stored.model_version == "m-test"

    # the agreement table changed: one more video pairs the model with the reviewers' consensus
    assert model_gqs_pairs(driver, base) == pairs_before + 1
    assert driver.find_elements(By.CSS_SELECTOR, "#agreement-chart svg")

    # a post without the CSRF token is refused, and nothing is stored
    driver.get(f"{base}/ui/videos/{video}")
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "const i = document.createElement('input'); i.name = 'gqs'; i.value = '1'; f.appendChild(i);"
        "document.body.appendChild(f); f.submit();", f"/ui/videos/{video}/rate")
    assert "did not come from this site" in wait_for(driver, "#error-message").text
    assert len(video_ratings(graph, video)) == 1

    # the language switch
    driver.get(f"{base}/ui/videos/{video}")
    driver.find_element(By.ID, "lang-switch").click()
    assert "预测的疾病及其依据" in wait_for(driver, "#profile").text
