"""Review in a real headless browser (Debian's Chromium, driven by Playwright): the editor's loop end to end with
the mouse and with the keyboard alone, a stale page refused, and the screenshots in docs/ that the README shows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PUTIN, ROOT

from recommender.archive import parse_event
from recommender.review import Reviewer, create_review_app
from recommender.suggest import DECISIONS_FILE, load_rules
from recommender.testing import serving_in_thread

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AMTRAK = "news/2016/03/14/an-amtrak-passenger-train-derails-west-of-dodge-city-in-the-american-state-of-kansas.md"
DAY = dt.date(2016, 3, 14)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does)"
)


@pytest.fixture()
def server(archive_copy, index_copy) -> Iterator[tuple[str, Reviewer]]:
    reviewer = Reviewer.open(archive_copy, index_copy, since=DAY, until=DAY)
    reviewer.start()
    with serving_in_thread(create_review_app(reviewer)) as url:
        yield url, reviewer
    reviewer.wait_for_index(60)
    reviewer.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


def candidates(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.eval_on_selector_all("div.card[data-id]", "cards => cards.map(c => c.dataset.id)")


def test_accept_reject_undo_accept_in_the_browser(server, browser, archive_copy):
    base, reviewer = server
    before = (archive_copy / PUTIN).read_bytes()
    editor = browser.new_context(viewport={"width": 1366, "height": 860})  # type: ignore[attr-defined]
    other = browser.new_context(viewport={"width": 1366, "height": 860})  # type: ignore[attr-defined]
    page = editor.new_page()
    page.goto(base + "/")
    page.wait_for_selector("table.queue")
    assert page.locator("table.queue tbody tr").count() >= 5
    page.screenshot(path=str(ROOT / "docs" / "review-queue.png"))

    stale = other.new_page()  # a second session opens the same event before the first one decides
    stale.goto(base + "/event/" + PUTIN)

    page.locator(f'a[href="/event/{PUTIN}"]').first.click()
    page.wait_for_selector("div.card[data-id]")
    assert page.locator("#headline").inner_text().startswith("Russian President Vladimir Putin orders")
    assert page.locator("#related li").count() == 10
    page.screenshot(path=str(ROOT / "docs" / "review-event.png"))

    # accept the first suggestion with an edited Context
    first = candidates(page)[0]
    card = page.locator(f'div.card[data-id="{first}"]')
    card.locator("input[name=context]").fill("Russian military intervention, Syria")
    with page.expect_navigation():
        card.locator("button.accept").click()
    assert page.locator("#related li").count() == 11
    assert first not in candidates(page)

    # reject the next with a reason, then undo it
    second = candidates(page)[0]
    card = page.locator(f'div.card[data-id="{second}"]')
    card.locator("button[data-action=reject]").click()
    card.locator("select[name=reason]").select_option("wrong story")
    with page.expect_navigation():
        card.locator(".reasons button.reject").click()
    assert second not in candidates(page)
    assert frozenset({PUTIN, second}) in load_rules(archive_copy / "editors.toml").never
    with page.expect_navigation():
        page.locator("form.undo button").click()
    assert second in candidates(page)
    assert load_rules(archive_copy / "editors.toml").never == set()

    # accept another one
    third = candidates(page)[1]
    with page.expect_navigation():
        page.locator(f'div.card[data-id="{third}"] button.accept').click()
    after = (archive_copy / PUTIN).read_bytes()
    added = after[len(before) :].decode().splitlines()
    assert after.startswith(before) and len(added) == 2
    assert added[0].startswith("11. [") and added[0].endswith(") _Context: Russian military intervention, Syria_")
    assert added[1].startswith("12. [")
    related = parse_event(PUTIN, after.decode()).related
    assert [reviewer.recommender.find_id(link.href) for link in related[-2:]] == [first, third]
    log = [json.loads(line) for line in (archive_copy / DECISIONS_FILE).read_text().splitlines()]
    assert [(r["decision"], r["candidate"]) for r in log] == [
        ("accepted", first),
        ("rejected", second),
        ("undo", second),
        ("accepted", third),
    ]
    assert log[1]["reason"] == "wrong story" and log[0]["context"] == "Russian military intervention, Syria"
    assert all(r["rank"] and r["score"] is not None for r in log if r["decision"] != "undo")

    # the second session's page is stale now: its accept is refused, and nothing is written
    stale_card = stale.locator("div.card[data-id]").nth(3)
    stale_card.locator("input[name=context]").fill("my careful context")
    with stale.expect_navigation():
        stale_card.locator("button.accept").click()
    assert "changed since this page was shown" in stale.locator("#refused").inner_text()
    assert stale.locator("input[value='my careful context']").count() == 1  # what the editor typed is kept
    assert (archive_copy / PUTIN).read_bytes() == after
    editor.close()
    other.close()


def test_keyboard_only_accept_reject_next(server, browser, archive_copy):
    base, reviewer = server
    before = (archive_copy / AMTRAK).read_bytes()
    context = browser.new_context(viewport={"width": 1366, "height": 860})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(base + "/event/" + AMTRAK)
    page.wait_for_selector("div.card.sel")
    assert "reject" in page.locator("#keys").inner_text()
    first, second = candidates(page)[:2]
    with page.expect_navigation():
        page.keyboard.press("a")
    assert parse_event(AMTRAK, (archive_copy / AMTRAK).read_text()).related[0].href.endswith(first.split("/")[-1])
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert candidates(page)[0] == second
    page.keyboard.press("r")
    with page.expect_navigation():
        page.keyboard.press("2")  # too generic
    assert second not in candidates(page)
    log = [json.loads(line) for line in (archive_copy / DECISIONS_FILE).read_text().splitlines()]
    assert [(r["decision"], r.get("reason")) for r in log] == [("accepted", None), ("rejected", "too generic")]
    added = (archive_copy / AMTRAK).read_bytes()[len(before) :].decode()
    assert added.startswith("\n### Related:\n\n1. [")

    # a rejected pair is never offered again, even by a new session
    again = Reviewer.open(archive_copy, reviewer.index_path, since=DAY, until=DAY)
    assert second not in {s.id for s in again.suggestions(AMTRAK)}
    with page.expect_navigation():
        page.keyboard.press("n")
    assert page.url != base + "/event/" + AMTRAK
    with page.expect_navigation():
        page.keyboard.press("q")
    assert page.locator("table.queue").count() == 1
    context.close()
