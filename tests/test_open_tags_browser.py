"""The review pages' open tags and search by meaning in a real browser (headless Chromium through Selenium) against
the real Neo4j, the real sentence encoder and the dictionary linker: the video page shows the open tags apart from the
predictions with their evidence in the text, the disease page lists videos predicted and tagged apart, the header's
search box finds videos by meaning across languages with the reason for each hit, and "similar videos" starts from a
video.

The test videos are written through the worker's write-back (``write_profiles``) with their text vectors from the
sentence encoder, under ids that start with ``tagsbrowser_``; their tags' evidence is written as the worker stores it
(offsets into each piece's own field). A missing browser fails with the command that installs it.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from api.app import create_app
from api.db import close_graph
from browser import headless_chromium, serve_app
from encoders.disease_tags import WHOLE_TEXT, NamedEvidence, SimilarityEvidence, SourceTag, combine_tags
from encoders.phenotype_ic import PhenotypeEvidence
from encoders.sentence_vectors import SentenceVectorEncoder
from kg_builder.graph import Graph
from review_support import app_settings, delete_review_data
from worker.records import DiseasePrediction, MentionRecord, ProfileRecord, VideoMeta
from worker.writeback import write_profiles

PREFIX = "tagsbrowser_"
GLAUCOMA, PRESSURE, CATARACT, UNTAGGED = (PREFIX + s for s in ("glaucoma", "pressure", "cataract", "untagged"))

TRANSCRIPT = "Glaucoma slowly damages the optic nerve. Dry eyes feel gritty after hours at a screen."
SENTENCE = "Dry eyes feel gritty after hours at a screen."


def _span(text: str, part: str) -> tuple[int, int]:
    start = text.index(part)
    return start, start + len(part)


def _records(encoder: SentenceVectorEncoder) -> list[ProfileRecord]:
    """Three SYNTHETIC videos: one predicted and tagged glaucoma (named, phenotypes) with two similarity tags, one in
    English tagged glaucoma by similarity only (no prediction), one in Chinese about cataract."""
    named_glaucoma = SourceTag("OVP:glaucoma", "named", 1.0, named=(
        NamedEvidence("青光眼", 0, 3, 1.0, "dictionary", field="title"),
        NamedEvidence("Glaucoma", *_span(TRANSCRIPT, "Glaucoma"), 0.95, "dictionary", field="transcript")))
    by_phenotypes = SourceTag("OVP:glaucoma", "phenotypes", 0.42, summed_ic=3.6, matched=2, phenotypes=(
        PhenotypeEvidence("HP:0001123", 2.1, "HP:0000501", 1.5), PhenotypeEvidence("HP:0007663", 1.5, "HP:0007663", 1.5)))
    dry = SourceTag("OVP:dry_eye_disease", "similarity", 0.61, similarity=SimilarityEvidence(
        0.61, *_span(TRANSCRIPT, SENTENCE), "Dry eye disease. A condition in which the eyes do not make enough tears.",
        field="transcript"))
    whole = f"青光眼科普\n眼压高 视野缩小 不是近视\n{TRANSCRIPT}"
    myopia = SourceTag("OVP:myopia", "similarity", 0.52, similarity=SimilarityEvidence(
        0.52, 0, len(whole), "近视", field=WHOLE_TEXT))
    pressure_caption = "Why doctors measure the pressure in your eye, and what high pressure does to the optic nerve."
    pressure_tag = SourceTag("OVP:glaucoma", "similarity", 0.57, similarity=SimilarityEvidence(
        0.57, *_span(pressure_caption, pressure_caption), "Glaucoma. A group of eye diseases ...", field="caption"))
    cataract = SourceTag("OVP:cataract", "named", 1.0, named=(NamedEvidence("白内障", 0, 3, 1.0, "dictionary", field="title"),))
    videos = (
        (GLAUCOMA, "青光眼科普", "眼压高 视野缩小 不是近视", TRANSCRIPT, (DiseasePrediction("OVP:glaucoma", 0.9, 1),),
         (MentionRecord("OVP:glaucoma", "青光眼", 0, 3, 1.0, field="title"),
          MentionRecord("OVP:ocular_hypertension", "眼压高", 0, 3, 1.0, field="caption"),
          MentionRecord("OVP:visual_field_loss", "视野缩小", 4, 8, 1.0, field="caption"),
          MentionRecord("OVP:myopia", "近视", 11, 13, 0.9, negated=True, field="caption")),
         combine_tags([named_glaucoma], [by_phenotypes], [dry, myopia])),
        (PRESSURE, "Eye pressure check", pressure_caption, "", (), (), combine_tags([pressure_tag])),
        (CATARACT, "白内障科普", "白内障手术以后视力模糊怎么办？医生告诉你术后护理", "", (),
         (MentionRecord("OVP:cataract", "白内障", 0, 3, 1.0, field="title"),), combine_tags([cataract])),
    )
    records = []
    for video_id, title, caption, transcript, predictions, mentions, tags in videos:
        text = "\n".join(p for p in (title, caption, transcript) if p)
        records.append(ProfileRecord(
            video=VideoMeta(id=video_id, platform="bilibili", title=title, caption=caption, transcript=transcript,
                            published_at="2024-03-01T12:00:00+00:00", synthetic=True),
            model_version="m-tags", popularity=50.0, popularity_pct=99.0, quality=4, quality_probs=(0.05, 0.05, 0.1, 0.6, 0.2),
            predictions=predictions, mentions=mentions, tags=tuple(tags),
            text_vector=tuple(float(x) for x in encoder.encode([text])[0])))
    # profiled as before issue 38 (OVP_OPEN_TAGS=0): no tags, no text vector
    records.append(ProfileRecord(
        video=VideoMeta(id=UNTAGGED, platform="douyin", title="护眼小知识", caption="多看远处", synthetic=True),
        model_version="m-tags", popularity=1.0, popularity_pct=10.0, quality=3, quality_probs=(0.2,) * 5))
    return records


@pytest.fixture(scope="module")
def site(graph: Graph, built_kg: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    delete_review_data(graph, PREFIX)
    write_profiles(graph, _records(SentenceVectorEncoder().load()))
    app = create_app(app_settings(tmp_path_factory.mktemp("media")),
                     {"TESTING": True, "RATELIMIT_KEY_PREFIX": f"ovptest-{uuid.uuid4().hex}"})
    with serve_app(app) as base, headless_chromium() as driver:
        yield {"base": base, "driver": driver, "app": app}
    close_graph(app)
    delete_review_data(graph, PREFIX)


def wait_for(driver: Any, selector: str, timeout: float = 60.0) -> Any:
    return WebDriverWait(driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)))


def texts(driver: Any, selector: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, selector)]


def test_video_page_shows_open_tags_apart_with_their_evidence(site: dict[str, Any], graph: Graph) -> None:
    driver, base = site["driver"], site["base"]
    driver.get(f"{base}/ui/videos/{GLAUCOMA}?lang=en")
    tags = wait_for(driver, "#open-tags")
    assert "Open tags (any disease in the graph)" in tags.text
    # the trained head's predictions stay where they were, and only them
    assert texts(driver, "#profile .evidence-head strong") == ["Glaucoma"]
    assert texts(driver, "#open-tags .evidence-head strong") == ["Glaucoma", "Dry eye disease", "Myopia"]

    first = driver.find_element(By.ID, "tag-1")
    assert texts(driver, "#tag-1 .chip.source") == ["named in the text", "inferred from phenotypes"]
    assert first.find_element(By.CSS_SELECTOR, ".prob").text == "1.00"
    # the named mentions highlighted in their own field, with the text around them
    assert texts(driver, "#tag-1 .ev-named mark.mention") == ["青光眼", "Glaucoma"]
    snippets = texts(driver, "#tag-1 .ev-named blockquote")
    assert snippets[0].startswith("TITLE") and "青光眼科普" in snippets[0]
    assert snippets[1].startswith("TRANSCRIPT") and "Glaucoma slowly damages the optic nerve" in snippets[1]
    # the phenotypes that inferred it, the most specific first, with their information content
    phenotypes = texts(driver, "#tag-1 .ev-phenotypes li")
    assert phenotypes[0].startswith("Visual field defect IC 2.10") and "Glaucoma IC 1.50" in phenotypes[0]
    assert phenotypes[1] == "Reduced visual acuity IC 1.50"
    assert "summed information content 3.60" in first.find_element(By.CSS_SELECTOR, ".ev-phenotypes .ev-label").text

    # the similarity and the sentence it matched, highlighted in the transcript; the whole text for the other
    dry = driver.find_element(By.ID, "tag-2").text
    assert "similar in meaning 0.61" in dry and "the sentence that was closest" in dry and "Dry eye disease. A condition" in dry
    assert texts(driver, "#tag-2 mark.similar") == [SENTENCE]
    assert "the whole text was closest" in driver.find_element(By.ID, "tag-3").text
    assert texts(driver, "#tag-3 blockquote .field-name") == ["WHOLE TEXT"]

    # in Chinese: the section's name and the diseases' Chinese names
    driver.find_element(By.ID, "lang-switch").click()
    assert "开放标签（图谱中的任意疾病）" in wait_for(driver, "#open-tags h2").text
    assert texts(driver, "#open-tags .evidence-head strong") == ["青光眼", "干眼症", "近视"]
    assert "由表型推断" in driver.find_element(By.ID, "tag-1").text
    assert "视野缺损" in driver.find_element(By.CSS_SELECTOR, "#tag-1 .ev-phenotypes").text
    driver.get(f"{base}/ui/videos/{GLAUCOMA}?lang=en")


def test_disease_page_lists_videos_predicted_and_tagged_apart(site: dict[str, Any], graph: Graph) -> None:
    driver, base = site["driver"], site["base"]
    driver.get(f"{base}/ui/entities/OVP:glaucoma?lang=en")
    table = wait_for(driver, "#disease-video-table")
    assert table.get_attribute("data-via") == "predicted"
    predicted = {r.get_attribute("data-video") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert GLAUCOMA in predicted and PRESSURE not in predicted
    assert driver.find_element(By.ID, "via-predicted").get_attribute("class") == "on"

    driver.find_element(By.ID, "via-tagged").click()
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.ID, "disease-video-table").get_attribute("data-via") == "tagged")
    rows = {r.get_attribute("data-video"): r.text for r in
            driver.find_elements(By.CSS_SELECTOR, "#disease-video-table tbody tr")}
    assert {GLAUCOMA, PRESSURE} <= set(rows)
    assert "similar in meaning" in rows[PRESSURE] and "0.57" in rows[PRESSURE] and "SYNTHETIC" in rows[PRESSURE]
    assert "named in the text" in rows[GLAUCOMA] and "inferred from phenotypes" in rows[GLAUCOMA]
    # a disease no video is tagged with: the tagged list says so
    untagged = graph.read("MATCH (d:Entity:Disease) WHERE NOT EXISTS { (d)<-[:TAGGED]-(:Profile {latest: true}) } "
                          "RETURN d.id AS id ORDER BY d.id LIMIT 1")[0]["id"]
    driver.get(f"{base}/ui/entities/{untagged}?lang=en&via=tagged")
    assert "No video's latest profile is tagged with it." in wait_for(driver, "#disease-videos").text


def _our_hits(driver: Any) -> list[tuple[str, str]]:
    wait_for(driver, "#search-hits")
    return [(r.get_attribute("data-video"), r.find_element(By.CSS_SELECTOR, "td.reason").text)
            for r in driver.find_elements(By.CSS_SELECTOR, "#search-hits tbody tr")
            if r.get_attribute("data-video").startswith(PREFIX)]


def test_search_box_finds_videos_by_meaning_across_languages(site: dict[str, Any]) -> None:
    driver, base = site["driver"], site["base"]
    driver.get(f"{base}/ui/videos?lang=en")
    box = wait_for(driver, "#header-search")
    box.send_keys("青光眼 眼压高怎么办", Keys.ENTER)
    hits = _our_hits(driver)
    assert hits[0][0] == GLAUCOMA
    assert "text similarity" in hits[0][1] and "mentions and tagged Glaucoma" in hits[0][1]
    assert "Glaucoma" in driver.find_element(By.ID, "query-concepts").text
    assert driver.find_element(By.ID, "search-q").get_attribute("value") == "青光眼 眼压高怎么办"

    # an English query finds the Chinese video; the reasons in Chinese on the Chinese page
    driver.find_element(By.ID, "search-q").clear()
    driver.find_element(By.ID, "search-q").send_keys("recovery after cataract surgery, blurry vision", Keys.ENTER)
    WebDriverWait(driver, 60).until(lambda d: "cataract" in d.current_url)
    assert _our_hits(driver)[0][0] == CATARACT
    driver.get(f"{base}/ui/search?lang=zh&q=" + quote("白内障"))
    cataract = dict(_our_hits(driver))[CATARACT]
    assert "文本相似度" in cataract and "提到且标注为 白内障" in cataract

    # a blank or oversized query: the search page says what is wrong, not an error page
    driver.get(f"{base}/ui/search?lang=en&q=%20%20")
    assert wait_for(driver, "#search-problem").text == "Type a few words to search (Chinese or English)."
    driver.get(f"{base}/ui/search?lang=en&q=" + "x" * 501)
    assert "at most 500 are accepted" in wait_for(driver, "#search-problem").text
    assert driver.find_elements(By.ID, "search-form")


def test_similar_videos_from_the_video_page(site: dict[str, Any]) -> None:
    driver, base = site["driver"], site["base"]
    driver.get(f"{base}/ui/videos/{GLAUCOMA}?lang=en")
    wait_for(driver, "#similar-link").click()
    assert "Videos similar in meaning to" in wait_for(driver, "#search-title").text
    hits = dict(_our_hits(driver))
    assert GLAUCOMA not in hits and PRESSURE in hits
    assert "tagged Glaucoma" in hits[PRESSURE]


def test_search_pages_status(site: dict[str, Any]) -> None:
    """What the browser cannot see: the status codes of a refused query and of an unknown video."""
    client = site["app"].test_client()
    assert client.get("/ui/search").status_code == 200
    assert client.get("/ui/search?q=%20").status_code == 400
    assert client.get("/ui/search?q=" + "x" * 501).status_code == 400
    refused = client.get("/ui/search?q=a%00b")
    assert refused.status_code == 400 and "control characters" in refused.get_data(as_text=True)
    assert client.get("/ui/search?q=eye&k=0").status_code == 400
    assert client.get(f"/ui/videos/{PREFIX}missing/similar").status_code == 404
    # a video profiled without open tags: the video page and its similar page say why there is nothing
    page = client.get(f"/ui/videos/{UNTAGGED}?lang=en").get_data(as_text=True)
    assert "No open tag" in page and "OVP_OPEN_TAGS=0" in page
    similar = client.get(f"/ui/videos/{UNTAGGED}/similar?lang=en")
    assert similar.status_code == 200 and "This video has no text vector" in similar.get_data(as_text=True)
    assert client.get(f"/ui/entities/OVP:glaucoma?via=sideways").status_code == 400
