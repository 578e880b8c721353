"""The supporters' page in headless Chromium (Playwright for Python), served from
127.0.0.1 as `tminus toolkit serve` serves it, with the page's clock set by Playwright
(`page.clock`): the countdown ticks, the texts follow the clock, the page closes at the
deadline, the Mastodon chooser remembers, the letter fills in exactly as the template
renders, and no request leaves localhost. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from content.campaign import load_campaign
from content.render import Renderer, base_context
from content.toolkit import letter as letters
from content.toolkit.texts import Kit, build_kit, seconds_left, step_at
from scheduler.toolkit.serve import make_server, url_of
from scheduler.toolkit.site import build_site
from tests.browser import ARTIFACTS
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

POTUS, PETITION = ROOT / "examples" / "potuspardon", ROOT / "examples" / "petition"
POTUS_BUILT = datetime.fromisoformat("2017-01-16T08:00:00-05:00")
OWL_BUILT = datetime.fromisoformat("2027-03-08T12:00:00-05:00")
DEADLINE = datetime.fromisoformat("2017-01-20T12:00:00-05:00")


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Both examples built and served, each on its own port of 127.0.0.1."""
    root = tmp_path_factory.mktemp("toolkit")
    urls, servers = {}, []
    for name, folder, as_of in (("potus", POTUS, POTUS_BUILT), ("owl", PETITION, OWL_BUILT)):
        build_site(folder, root / name, as_of=as_of.astimezone(UTC))
        server = make_server(root / name, port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[name] = url_of(server)
    urls["owl_dir"] = str(root / "owl")
    yield urls
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def context(browser_context: BrowserContext) -> Iterator[BrowserContext]:
    """A browser profile that records every request and lets none leave localhost."""
    outside: list[str] = []

    def route(r: Route) -> None:
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith("file:") or host == "127.0.0.1":
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    browser_context.route("**/*", route)
    yield browser_context
    assert outside == [], f"the page asked for something off this machine: {outside}"


def _open(context: BrowserContext, url: str, at: datetime) -> Page:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.clock.install(time=at - timedelta(seconds=1))
    page.clock.pause_at(at)
    page.goto(url)
    page.wait_for_load_state("load")
    assert errors == []
    return page


def _kit(folder: Path, as_of: datetime) -> Kit:
    campaign = load_campaign(folder)
    assert campaign.toolkit is not None
    return build_kit(campaign, campaign.toolkit, as_of=as_of.astimezone(UTC))


def _x_row(page: Page, n: int) -> tuple[str | None, str | None]:
    text = page.locator(f'[data-timed="p{n}-0"][data-field="text"]').text_content()
    link = page.locator(f'[data-timed="p{n}-0"][data-field="x"]').get_attribute("href")
    return text, link


# -- the countdown and the texts ------------------------------------------------------------


def test_the_countdown_ticks(context: BrowserContext, sites: dict[str, str]) -> None:
    page = _open(context, sites["potus"], datetime.fromisoformat("2017-01-16T09:00:00-05:00"))
    parts = [page.text_content(f'[data-unit="{u}"]') for u in "dhms"]
    assert parts == ["4", "03", "00", "00"]
    assert page.text_content('[data-label="d"]') == "days"
    page.clock.run_for(2000)
    assert [page.text_content(f'[data-unit="{u}"]') for u in "dhms"] == ["4", "02", "59", "58"]


def test_the_texts_follow_the_clock_not_the_build(context: BrowserContext, sites: dict[str, str]) -> None:
    kit = _kit(POTUS, POTUS_BUILT)
    ask = kit.pages["en"].posts[0]
    x_row = next(r for r in ask.rows if "x" in r.platforms)
    for when in ("2017-01-16T09:00:00-05:00", "2017-01-18T23:59:59-05:00",
                 "2017-01-20T09:00:00-05:00", "2017-01-20T11:59:30-05:00"):
        at = datetime.fromisoformat(when)
        page = _open(context, sites["potus"], at)
        text, link = _x_row(page, 1)
        want = step_at(x_row.steps, seconds_left(kit.deadline, at))
        assert text == want.copy and link == want.shares["x"].link, when
        assert parse_qs(urlsplit(link or "").query)["text"] == [want.text]
        page.close()
    last_morning = _open(context, sites["potus"], datetime.fromisoformat("2017-01-20T09:00:00-05:00"))
    text, _ = _x_row(last_morning, 1)
    assert text is not None and text.startswith(".@POTUS, 3 hours left.") and "days" not in text
    assert "use the 3 hours he has left" in (last_morning.text_content(".script") or "")


def test_a_text_changes_in_the_page_when_a_step_passes(context: BrowserContext, sites: dict[str, str]) -> None:
    page = _open(context, sites["potus"], datetime.fromisoformat("2017-01-19T11:59:58-05:00"))
    assert (_x_row(page, 1)[0] or "").startswith(".@POTUS, you have 1 day left")
    page.clock.run_for(3000)                           # past Thursday noon: the last day
    assert (_x_row(page, 1)[0] or "").startswith(".@POTUS, 23 hours left.")


def test_at_the_deadline_the_page_closes_and_offers_no_share_link(
        context: BrowserContext, sites: dict[str, str]) -> None:
    page = _open(context, sites["potus"], DEADLINE - timedelta(seconds=2))
    assert page.locator('a[href^="https://x.com/intent/tweet"]').count() == 3    # one per post
    assert page.locator('a[href^="tel:"]').count() == 1
    expect(page.locator("#closed")).to_be_hidden()
    page.clock.run_for(3000)
    for selector in ('a[href*="intent"]', '[data-field]', 'a[href^="tel:"]', "#letter", ".countdown"):
        assert page.locator(selector).count() == 0, selector
    expect(page.locator("#closed")).to_be_visible()
    assert "The pardon power passed" in (page.text_content("#closed") or "")

    later = _open(context, sites["potus"] + "es/", DEADLINE + timedelta(days=30))
    assert later.locator("a[href*='intent']").count() == 0
    assert "Esta campaña ha terminado" in (later.text_content("#closed") or "")


# -- Mastodon, copying, languages ------------------------------------------------------


def test_the_mastodon_chooser_remembers_the_server(context: BrowserContext, sites: dict[str, str]) -> None:
    page = _open(context, sites["owl"], OWL_BUILT)
    mastodon = page.locator('[data-field="mastodon"]').first
    assert mastodon.get_attribute("href") == "#mastodon-server"
    mastodon.click()
    assert "First say which Mastodon server" in (page.text_content("#mastodon-status") or "")
    page.fill("#mastodon-instance", "not a server")
    page.click("#mastodon-server button")
    assert "Write the server's name" in (page.text_content("#mastodon-status") or "")
    page.fill("#mastodon-instance", "https://Mastodon.Social/@ana")
    page.click("#mastodon-server button")
    href = mastodon.get_attribute("href") or ""
    parts = urlsplit(href)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "mastodon.social", "/share")
    kit = _kit(PETITION, OWL_BUILT)
    step = step_at(kit.pages["en"].posts[0].rows[0].steps, kit.seconds_left)
    assert parse_qs(parts.query) == {"text": [step.shares["mastodon"].post]}

    again = _open(context, sites["owl"], OWL_BUILT)                 # the same browser, later
    assert again.input_value("#mastodon-instance") == "mastodon.social"
    assert (again.locator('[data-field="mastodon"]').first.get_attribute("href") or "").startswith(
        "https://mastodon.social/share?text=")


def test_copy_puts_the_post_on_the_clipboard(context: BrowserContext, sites: dict[str, str]) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=sites["owl"].rstrip("/"))
    page = _open(context, sites["owl"], OWL_BUILT)
    button = page.locator('button[data-field="copy"]').first
    button.click()
    assert page.evaluate("navigator.clipboard.readText()") == button.get_attribute("data-copy")
    assert "#KeepTheOwl https://example.org/keep-the-owl" in (button.get_attribute("data-copy") or "")
    assert "Copied" in (page.locator(".card .status").first.text_content() or "")


def test_the_other_language_is_one_click_away(context: BrowserContext, sites: dict[str, str]) -> None:
    page = _open(context, sites["potus"], POTUS_BUILT)
    assert page.get_attribute("html", "lang") == "en"
    link = page.locator('nav.languages a[hreflang="es"]')
    assert link.get_attribute("lang") == "es"
    link.click()
    page.wait_for_load_state("load")
    assert page.get_attribute("html", "lang") == "es"
    assert page.text_content("h1") == "Cuatro días. Un indulto."
    assert (page.text_content('[data-timed="p1-0"][data-field="text"]') or "").startswith(".@POTUS, le quedan")


def test_the_markup_is_accessible(context: BrowserContext, sites: dict[str, str]) -> None:
    page = _open(context, sites["owl"], OWL_BUILT)
    unlabeled = page.evaluate("""() => Array.from(document.querySelectorAll('input'))
        .filter(i => !document.querySelector(`label[for="${i.id}"]`)).map(i => i.id)""")
    assert unlabeled == []
    nameless = page.evaluate("""() => Array.from(document.querySelectorAll('a, button'))
        .filter(e => !e.hidden && !(e.textContent || '').trim()).length""")
    assert nameless == 0
    assert page.locator("h1").count() == 1 and page.locator("main#main").count() == 1
    assert page.locator('[role="timer"][aria-label="Time left"]').count() == 1


# -- the letter --------------------------------------------------------------------------


def _letter(lang: str, values: dict[str, str]) -> tuple[str, str]:
    """The subject and letter as the template renders them for `values`."""
    campaign = load_campaign(PETITION)
    assert campaign.toolkit is not None and campaign.toolkit.letter is not None
    spec = campaign.toolkit.letter
    context = letters.context_with(base_context(campaign=campaign, account="supporter",
                                                platform="email", extra_vars={}, language=lang), values)
    renderer = Renderer(PETITION)
    body = renderer.render(spec.body[lang].template or "", context)
    subject = renderer.render("subject", context, source=spec.subject[lang].text)
    return subject, body


@pytest.mark.parametrize("lang, path", [("en", ""), ("es", "es/")])
def test_the_letter_fills_in_as_one_types_and_is_the_templates_rendering(
        context: BrowserContext, sites: dict[str, str], lang: str, path: str) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=sites["owl"].rstrip("/"))
    page = _open(context, sites["owl"] + path, OWL_BUILT)
    assert "______" in (page.text_content("#letter-text") or "")
    page.click("#letter-copy")                                  # blanks still empty
    assert page.evaluate("document.activeElement.id") == "fill-name"

    values = {"name": "Ana Ruiz-Núñez", "neighborhood": "  East Riverton ", "route": "N4 Owl",
              "reason": "my 6 a.m. shift at St. Mary’s 🏥"}
    for name, value in values.items():
        page.locator(f"#fill-{name}").press_sequentially(value)
    subject, body = _letter(lang, values)
    assert page.text_content("#letter-text") == body
    assert page.evaluate("window.tminusToolkit.letter()") == body
    assert page.text_content("#letter-subject") == subject

    href = page.get_attribute("#letter-mail", "href") or ""
    parts = urlsplit(href)
    assert (parts.scheme, parts.path) == ("mailto", "comments@riverton-transit.example")
    query = parse_qs(parts.query, strict_parsing=True)
    assert query["subject"] == [subject]
    assert query["body"] == [body.replace("\n", "\r\n")]

    page.click("#letter-copy")
    assert page.evaluate("navigator.clipboard.readText()") == body


def test_the_page_works_opened_from_disk_too(context: BrowserContext, sites: dict[str, str]) -> None:
    page = _open(context, Path(sites["owl_dir"], "index.html").as_uri(), OWL_BUILT)
    expect(page.locator("#mastodon-server")).to_be_visible()          # the script ran
    page.locator("#fill-name").press_sequentially("Ana")
    assert "Hi, my name is Ana and" in (page.text_content("#letter-text") or "")


# -- how it looks ------------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("site", ["potus", "owl"])
@pytest.mark.parametrize("device, width", [("desktop", 1280), ("phone", 390)])
def test_screenshots_at_desktop_and_phone_width(
        chromium: object, sites: dict[str, str], site: str, device: str, width: int) -> None:
    from playwright.sync_api import Browser
    assert isinstance(chromium, Browser)
    context = chromium.new_context(viewport={"width": width, "height": 900},
                                   device_scale_factor=2 if device == "phone" else 1,
                                   is_mobile=device == "phone", has_touch=device == "phone")
    try:
        page = _open(context, sites[site], POTUS_BUILT + timedelta(hours=2) if site == "potus" else OWL_BUILT)
        page.clock.run_for(1000)
        # nothing wider than the screen: no sideways scrolling on a phone
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"toolkit-{site}-{device}.png"
        page.screenshot(path=str(shot), full_page=True)
        w, h = _png_size(shot)
        assert w == width * (2 if device == "phone" else 1) and h > 900
    finally:
        context.close()
