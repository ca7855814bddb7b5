"""The explorer (notebook 07) served by Voila works in a real browser: headless Debian Chromium
driven by Playwright changes its widgets and sees the image and the labels change.

The test serves a finished run laid out by ``test_explore.write_fake_run`` on the ``aims_tiny``
fixture (seconds, no training), through a copy of the notebook with its parameters injected by
papermill (Voila injects none), on 127.0.0.1 at a free port with a token; the server is stopped
whatever happens. It is skipped only when ``/usr/bin/chromium``, playwright or voila is missing
(``apt-get install chromium``; the packages come from requirements.txt); no browser is ever
downloaded.

Run as a script, it does the same on a real run and saves the screenshot the README shows::

    .venv/bin/python tests/test_explorer_browser.py <reports_dir> <profile> docs/explorer.png
"""

from __future__ import annotations

import importlib.util
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_explorer.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Seconds for Voila to execute the notebook and the widgets to appear (imports dominate).
STARTUP_S = 150

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file() or any(importlib.util.find_spec(m) is None for m in ("playwright", "voila")),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium) and the playwright and voila "
           "packages (pip install -r requirements.txt); no browser is downloaded",
)


def prepare(folder: Path, parameters: dict[str, Any]) -> Path:
    """A copy of notebook 07 in ``folder`` with ``parameters`` injected (papermill, not executed)."""
    import papermill as pm

    out = folder / "07_explorer_app.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(out), parameters=parameters, prepare_only=True, progress_bar=False)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def voila(notebook: Path, log: Path) -> Iterator[str]:
    """Serve ``notebook`` with Voila on 127.0.0.1 (a free port, a random token); yields its URL
    once the server listens, and stops it on the way out."""
    port, token = free_port(), secrets.token_hex(16)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
             f"--token={token}", "--Voila.port_retries=0", "--show_tracebacks=True"],
            stdout=out, stderr=subprocess.STDOUT, cwd=notebook.parent,
        )
        try:
            url = f"http://127.0.0.1:{port}/?token={token}"
            deadline = time.monotonic() + 60
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"voila exited with {server.returncode}: {log.read_text()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"voila did not answer on port {port}: {log.read_text()[-2000:]}") from None
                    time.sleep(0.5)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def drive(url: str, screenshot: Path) -> dict[str, Any]:
    """Open the explorer at ``url`` in headless Chromium, wait for its widgets, then step to the
    next image, pick the last true class in the dropdown other than the shown image's, and click the first non-empty
    confusion-matrix cell; returns what was seen after each step, and saves a screenshot of the app."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.goto(url, wait_until="domcontentloaded", timeout=STARTUP_S * 1000)
            labels, image = page.locator(".explore-labels"), page.locator(".explore-image")
            try:
                labels.filter(has_text="id ").wait_for(timeout=STARTUP_S * 1000)
            except PlaywrightTimeout:  # Voila shows the notebook's error (--show_tracebacks) instead
                raise AssertionError(f"no explorer after {STARTUP_S} s; the page says: {page.inner_text('body')[-3000:]}") from None

            def state() -> dict[str, Any]:
                page.wait_for_timeout(300)
                return {"labels": labels.inner_text(), "image": image.screenshot(),
                        "count": page.locator(".explore-count").inner_text()}

            def changed(before: dict[str, Any], what: str = "labels") -> None:  # the kernel answers: ``what`` changes
                page.wait_for_function("([sel, old]) => document.querySelector(sel).innerText !== old",
                                       arg=[f".explore-{what}", before[what]], timeout=60_000)

            seen["start"] = state()
            page.locator("button.explore-next").click()
            changed(seen["start"])
            seen["next"] = state()
            dropdown = page.locator(".explore-true-class select")
            shown = re.search(r"true: (.+?) \(", seen["next"]["labels"]).group(1)  # the image now shown
            option = [o for o in dropdown.locator("option").all_inner_texts() if o.replace("\xa0", " ") != shown][-1]
            seen["true_class"] = option.replace("\xa0", " ")  # another class than the shown one: the image must change
            dropdown.select_option(label=option)
            changed(seen["next"])
            seen["picked"] = state()
            dropdown.select_option(label="any")
            changed(seen["picked"], "count")  # back to every image (the first may be the same)
            cell = page.locator(".explore-matrix button", has_text=re.compile(r"^[1-9]\d*$")).first
            seen["cell"] = next(c for c in cell.get_attribute("class").split() if c.startswith("explore-cell-"))
            cell.click()
            page.wait_for_function("() => document.querySelector('.explore-true-class select').value !== 'any'",
                                   timeout=60_000)
            seen["cell_true"] = dropdown.evaluate("s => s.options[s.selectedIndex].text").replace("\xa0", " ")
            labels.filter(has_text=f"true: {seen['cell_true']}").wait_for(timeout=60_000)
            seen["cell_labels"] = labels.inner_text()
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.set_viewport_size({"width": 1500, "height": 4000})  # Voila scrolls in a container: all of it in view
            page.wait_for_timeout(500)
            page.locator(".explore-app").screenshot(path=str(screenshot))
        finally:
            browser.close()
    return seen


def test_explorer_runs_as_a_voila_app(tmp_path: Path, aims_tiny: Path) -> None:
    from test_explore import write_fake_run

    from aims_lib import taxonomy
    from aims_lib.data.format import load_dataset

    reports = tmp_path / "reports"
    write_fake_run(reports, load_dataset(aims_tiny))
    notebook = prepare(tmp_path, {"profile": "smoke", "device": "cpu", "reports_dir": str(reports),
                                  "data_dir": str(aims_tiny.parent), "split": "all", "domain": "all"})
    screenshot = reports / "figures" / "07_explorer_app.png"
    start = time.perf_counter()
    with voila(notebook, tmp_path / "voila.log") as url:
        seen = drive(url, screenshot)
    print(f"voila + chromium: {time.perf_counter() - start:.1f} s")

    assert seen["errors"] == []
    assert seen["start"]["count"] == "1 of 12 images" and "id 1 " in seen["start"]["labels"]
    assert seen["next"]["count"] == "2 of 12 images" and "id 2 " in seen["next"]["labels"]
    assert seen["next"]["image"] != seen["start"]["image"]  # the drawn image changed with the slider
    assert seen["true_class"] == "Standing"  # the last fine class: aims_tiny's image 12
    assert seen["picked"]["count"] == "1 of 1 images" and "id 12 " in seen["picked"]["labels"]
    assert "true: Standing (Standing)" in seen["picked"]["labels"] and seen["picked"]["image"] != seen["next"]["image"]
    level, true_id, _ = seen["cell"].removeprefix("explore-cell-").split("-")
    assert level == "fine" and seen["cell_true"] == taxonomy.FINE[int(true_id)]
    assert f"true: {taxonomy.FINE[int(true_id)]}" in seen["cell_labels"]
    assert screenshot.stat().st_size > 30_000
    assert (reports / "figures" / "07_explorer.png").stat().st_size > 10_000  # the notebook's static view


if __name__ == "__main__":  # the README's screenshot of a real run: reports_dir profile out.png
    from PIL import Image

    reports_dir, profile, target = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    work = Path(reports_dir) / "explorer_app"
    work.mkdir(exist_ok=True)
    app = prepare(work, {"profile": profile, "device": "cpu", "reports_dir": str(Path(reports_dir).resolve())})
    with voila(app, work / "voila.log") as address:
        shot = drive(address, Path(reports_dir) / "figures" / "07_explorer_app.png")
    Image.open(Path(reports_dir) / "figures" / "07_explorer_app.png").convert("RGB").quantize(256).save(target, optimize=True)
    print(f"{target}: {shot['cell']}, errors {shot['errors']}")
