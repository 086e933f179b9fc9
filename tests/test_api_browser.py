"""The API's /docs in a real headless browser (Debian's Chromium, driven by Playwright) with the network cut off:
Swagger UI's files are served by the API itself, so the page renders every operation offline. The screenshot is
docs/api-docs.png."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from conftest import ROOT
from test_review_browser import ARGS, CHROMIUM

from recommender.api import create_app
from recommender.testing import serving_in_thread

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)"
)


@pytest.fixture(scope="module")
def api_url(recommender) -> Iterator[str]:
    with serving_in_thread(create_app(recommender=recommender)) as url:
        yield url


def test_the_docs_render_every_operation_with_no_network(api_url):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    outside: list[str] = []

    def only_loopback(route) -> None:  # type: ignore[no-untyped-def]
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # the network is off: anything fetched from elsewhere fails, and is noted
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.route("**/*", only_loopback)
            page.goto(f"{api_url}/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            paths = page.eval_on_selector_all(".opblock-summary-path", "found => found.map(p => p.innerText)")
            page.screenshot(path=str(ROOT / "docs" / "api-docs.png"))
        finally:
            browser.close()
    assert not outside, outside
    assert {"/health", "/events/{event_id}", "/events/{event_id}/related", "/similar", "/related/batch"} <= {
        p.replace("\u200b", "") for p in paths
    }, paths
