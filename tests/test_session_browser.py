"""The session report renders in a real browser: headless Debian Chromium driven by Playwright.

Skipped only when ``/usr/bin/chromium`` or the playwright package is missing (no browser is ever
downloaded: ``apt-get install chromium``, and playwright from requirements.txt).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from aims_lib import session, taxonomy

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file() or importlib.util.find_spec("playwright") is None,
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium) and the playwright "
           "package (pip install -r requirements.txt); no browser is downloaded",
)


def save_photo(path: Path, image) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


def test_report_renders_in_chromium(tmp_path: Path, photo, fake_predictor) -> None:
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "photos"
    folder.mkdir()
    save_photo(folder / "01.png", photo(taxonomy.FINE.index("Supine Lying")))
    save_photo(folder / "02.jpg", photo(taxonomy.FINE.index("Sitting w/ Arm Support")))
    save_photo(folder / "03.png", photo(taxonomy.FINE.index("Standing"), answer="uncertain"))
    save_photo(folder / "04.png", photo(0, no_infant=True))
    (folder / "05.jpg").write_bytes(b"broken")
    out = tmp_path / "report.html"
    session.make_report(session.open_input(folder), fake_predictor(), out, run_name="fake", age_months=8)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri(), wait_until="load")
            title = page.title()
            headings = page.locator("h1, h2").all_inner_texts()
            widths = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()

    assert title.startswith("Infant posture session report")
    assert headings[0] == "Infant posture session report"
    for heading in ("Summary", "Posture over the session", "AIMS poses observed", "All frames"):
        assert heading in headings
    assert any(h.startswith("Frames that need review") for h in headings)
    assert any(h.startswith("Unreadable files") for h in headings)
    # timeline + 2 observed poses + 2 review frames + 4 table thumbnails, all decoded
    assert len(widths) == 9 and all(w > 0 for w in widths), widths
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # self-contained
    assert (tmp_path / "report.png").stat().st_size > 10_000
