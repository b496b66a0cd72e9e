"""A person's first session, in real Chromium: log in, spawn, run TensorFlow and the scientific stack
in a notebook (a matplotlib figure shows), stop."""

import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from support import CHROMIUM_ARGS, goto



@pytest.fixture
def page(artifacts):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1400, "height": 900})
        page = context.new_page()
        try:
            yield page
        finally:
            page.screenshot(path=str(artifacts / "browser-last.png"))
            browser.close()


def wait_for_lab(page, pending_url, lab_url, timeout=180):
    """Follow the spawn to JupyterLab.

    Chromium aborts requests in flight with ERR_NETWORK_CHANGED when the host's network interfaces
    change (support.goto); while a spawn is under way the test reloads the page the way its user would.
    """
    deadline = time.monotonic() + timeout
    while not lab_url.search(page.url):
        if time.monotonic() > deadline:
            raise AssertionError(f"JupyterLab did not open within {timeout} s; at {page.url}")
        try:
            page.wait_for_url(lab_url, timeout=15_000)
        except PlaywrightError:
            try:
                page.goto(pending_url, wait_until="domcontentloaded")
            except PlaywrightError:
                pass  # cut off again; the next round retries


def visible_with_reloads(page, locator, timeout=180):
    """Wait for `locator`, reloading the page when a load was cut off (see wait_for_lab)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            locator.wait_for(state="visible", timeout=30_000)
            return
        except PlaywrightError:
            if time.monotonic() > deadline:
                raise
            try:
                page.reload(wait_until="domcontentloaded")
            except PlaywrightError:
                pass  # cut off again; the next round retries


# The articles' first workflow: plot a loss curve inline, next to every package users expect.
FIRST_CELL = ("import tensorflow as tf, pandas, scipy, sklearn, PIL, ipywidgets, tqdm, flask, gunicorn; "
              "import matplotlib.pyplot as plt; plt.plot([0.9, 0.5, 0.3, 0.2]); plt.show(); print(tf.__version__)")


def test_login_spawn_notebook_tensorflow_and_stop(stack, page, artifacts):
    goto(page, f"{stack.url}/")
    expect(page.get_by_text("DEMO identity provider: not for production").first).to_be_visible()
    page.get_by_text(re.compile("Sign in with DEMO")).click()
    page.get_by_role("button", name="bob", exact=True).click()
    # Spawn, then JupyterLab.
    wait_for_lab(page, f"{stack.url}/hub/spawn-pending/bob", re.compile(r"/user/bob/lab"))
    launcher = page.locator(".jp-LauncherCard[data-category='Notebook']").first
    visible_with_reloads(page, launcher)
    launcher.click()
    cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    expect(cell).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"\| Idle")).first).to_be_visible(timeout=120_000)  # kernel connected
    expect(page.get_by_text("Python 3 (TensorFlow 2.9)").first).to_be_visible()  # the kernel says what it is
    cell.click()
    page.keyboard.type(FIRST_CELL)
    output = page.locator(".jp-OutputArea-output").filter(has_text=re.compile(r"^\s*2\.9\.3\s*$")).first
    for attempt in range(3):  # a run request lost with a cut-off websocket (see wait_for_lab) is re-sent
        page.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Shift+Enter")
        try:
            output.wait_for(state="visible", timeout=90_000)
            break
        except PlaywrightError:
            if attempt == 2:
                raise
    figure = page.locator(".jp-OutputArea-output img[src^='data:image/png']").first
    expect(figure).to_be_visible(timeout=30_000)
    assert figure.bounding_box()["width"] > 100
    # ipywidgets render in JupyterLab 4 (the next cell; Shift+Enter moved there): a slider, not its repr.
    page.keyboard.type("ipywidgets.IntSlider(value=7, description='epochs')")
    page.keyboard.press("Shift+Enter")
    slider = page.locator(".widget-slider").filter(has_text="epochs").first
    expect(slider).to_be_visible(timeout=60_000)
    page.screenshot(path=str(artifacts / "browser-notebook-tf-2.9.3.png"))
    # Stop from the hub's home page.
    goto(page, f"{stack.url}/hub/home")
    page.locator("#stop").click()
    expect(page.locator("#start")).to_be_visible(timeout=120_000)
