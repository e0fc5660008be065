#!/usr/bin/env python3
"""Drives the analyst console in headless Chromium (Debian's chromium and
chromium-driver, Selenium from PyPI; scripts/install-deps installs them).

Started by tests/tests/e2e/console.rs, which runs a real hub, three enrolled
agents (`member-agent run`) and their consoles, and passes one JSON file:

  links        {"alice": URL, "bob": URL, "carol": URL}  one-time login links
  agent_bin    path of the member-agent binary
  alice_state  alice's state dir (to publish with the CLI while pages are open)
  lockfile     path of a package-lock.json naming a flagged package
  xss_title    the title of an item published beforehand
  screenshots  directory for the PNGs

Prints one "ok: ..." line per check and exits 0, or prints what failed
(and saves failure.png next to the config) and exits 1. Nothing loads from
outside loopback.
"""

import json
import os
import subprocess
import sys
import tempfile
import traceback

from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 90  # seconds; generous: the machine may be busy. Nothing asserts time.


def log(msg):
    print(msg, flush=True)


def browser(profile_dir):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--user-data-dir=" + profile_dir,
    ]:
        opts.add_argument(flag)
    service = Service(executable_path="/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(TIMEOUT)
    return driver


def wait(driver, cond, what):
    try:
        # A page replaced while a condition reads it is not a failure: look again.
        return WebDriverWait(
            driver, TIMEOUT, poll_frequency=0.25,
            ignored_exceptions=[StaleElementReferenceException, NoSuchElementException],
        ).until(lambda d: cond(d))
    except Exception as e:
        raise AssertionError("timed out waiting for " + what) from e


def origin(link):
    return link.split("/login", 1)[0]


def login(driver, link):
    driver.get(link)
    wait(driver, lambda d: d.find_elements(By.ID, "feed"), "the feed after logging in")
    # The token left the address bar and history.
    assert "token=" not in driver.current_url, driver.current_url


def no_alert(driver):
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def publish_cli(cfg, *args):
    out = subprocess.run(
        [cfg["agent_bin"], "--state-dir", cfg["alice_state"], "publish", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def shot(driver, cfg, name):
    path = os.path.join(cfg["screenshots"], name)
    # Whole page height, so the screenshot shows the page, not a window.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.get_window_size()["width"]
    driver.set_window_size(width, max(600, min(height + 140, 2400)))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(path)
    driver.set_window_size(width, 900)


def feed_titles(driver):
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#feed-rows a")]


def run(driver, cfg):
    links = cfg["links"]
    alice = origin(links["alice"])

    # Log in with the one-time link.
    login(driver, links["alice"])
    log("ok: logged in with the one-time link; the token left the address bar")

    # A title that is a script renders as text: no alert, nothing ran.
    xss = cfg["xss_title"]
    wait(driver, lambda d: xss in feed_titles(d), "the <script> titled item in the feed")
    assert no_alert(driver), "an alert opened"
    assert driver.execute_script("return window.__xss === undefined"), "the payload ran"
    log("ok: a <script> title renders as text in the feed (no alert, not executed)")

    # A live item arrives without reloading.
    driver.execute_script("window.__marker = 42")
    live_title = "live-pkg exfiltrates CI secrets"
    publish_cli(
        cfg, "--purl", "pkg:npm/live-pkg@3.1.4", "--tlp", "green",
        "--title", live_title, "--severity", "high",
        "--description", "Posts CI environment variables to a webhook.",
    )
    wait(driver, lambda d: live_title in feed_titles(d), "the live item to arrive")
    assert driver.execute_script("return window.__marker") == 42, "the page reloaded"
    row = driver.find_element(By.XPATH, "//tr[.//a[text()='%s']]" % live_title)
    assert "TLP:GREEN" in row.text and "verified" in row.text, row.text
    log("ok: a live item arrived over server-sent events without a reload")
    shot(driver, cfg, "feed.png")

    # Narrow screen.
    driver.set_window_size(400, 900)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(os.path.join(cfg["screenshots"], "feed-narrow.png"))
    driver.set_window_size(1280, 900)

    # The item page, and "we saw this".
    driver.find_element(By.LINK_TEXT, live_title).click()
    wait(driver, lambda d: d.find_elements(By.ID, "item-title"), "the item page")
    body = driver.find_element(By.TAG_NAME, "main").text
    for expected in ["TLP:GREEN", "alice-bank", "verified", "pkg:npm/live-pkg@3.1.4",
                     "Posts CI environment variables"]:
        assert expected in body, expected
    stix = driver.execute_script("return document.getElementById('copy-stix').textContent")
    assert '"type": "bundle"' in stix and "indicator" in stix, stix[:200]
    csv = driver.execute_script("return document.getElementById('copy-csv').textContent")
    assert csv.startswith("kind,purl") and "live-pkg" in csv, csv
    item_url = driver.current_url.split("?")[0]
    driver.find_element(By.ID, "sight").click()
    wait(driver, lambda d: "Sighting reported" in d.find_element(By.TAG_NAME, "main").text,
         "the sighting to be sent")

    def sighted(d):
        d.get(item_url)
        return d.find_element(By.ID, "sightings").text == "1"

    wait(driver, sighted, "the sighting to come back through the hub")
    log("ok: the item page shows every field, signer, STIX and CSV; 'we saw this' sent a sighting")
    driver.find_element(By.CSS_SELECTOR, "details summary").click()
    shot(driver, cfg, "item.png")

    # The script-titled item's own page.
    driver.get(alice + "/")
    driver.find_element(By.LINK_TEXT, xss).click()
    wait(driver, lambda d: d.find_elements(By.ID, "item-title"), "the <script> item page")
    assert driver.find_element(By.ID, "item-title").text == xss
    assert no_alert(driver) and driver.execute_script("return window.__xss === undefined")
    log("ok: the <script> title renders as text on its item page too")

    # Search.
    driver.get(alice + "/search")
    box = driver.find_element(By.ID, "q")
    box.send_keys("evil-pkg")
    box.submit()
    wait(driver, lambda d: d.find_elements(By.ID, "results"), "search results")
    results = driver.find_element(By.ID, "results").text
    assert "evil-pkg steals npm tokens" in results, results
    assert live_title not in results, results
    log("ok: search finds held items by package name")
    shot(driver, cfg, "search.png")

    # Exposure: upload a lockfile.
    driver.get(alice + "/exposure")
    driver.find_element(By.ID, "lockfile-file").send_keys(cfg["lockfile"])
    wait(driver, lambda d: d.find_element(By.ID, "lockfile-file").get_attribute("data-loaded"),
         "the lockfile to be read")
    fmt = driver.find_element(By.ID, "file_name").get_attribute("value")
    assert fmt == "package-lock.json", fmt
    driver.find_element(By.ID, "check").click()
    wait(driver, lambda d: d.find_elements(By.ID, "matches"), "exposure matches")
    matches = driver.find_element(By.ID, "matches").text
    assert "npm/evil-pkg" in matches and "evil-pkg steals npm tokens" in matches, matches
    assert "left-pad" not in matches, matches
    log("ok: the exposure check matched the uploaded package-lock.json to the indicator behind it")
    shot(driver, cfg, "exposure.png")

    # Publish an AMBER item to bob-bank from the form.
    amber_title = "amber-only for bob-bank"
    driver.get(alice + "/publish")
    driver.find_element(By.ID, "value").send_keys("pkg:npm/amber-only@2.0.0")
    driver.find_element(By.ID, "title").send_keys(amber_title)
    driver.find_element(By.ID, "ind-tlp-amber").click()
    driver.find_element(
        By.CSS_SELECTOR, "#ind-audience input[name=audience][value='org:bob-bank']").click()
    wait(driver, lambda d: "bob-bank" in d.find_element(By.ID, "preview").text
         and "Only:" in d.find_element(By.ID, "preview").text, "the recipient preview")
    preview = driver.find_element(By.ID, "preview").text
    assert "carol-bank" not in preview, preview
    audience = driver.find_element(By.ID, "ind-audience").text
    assert "Carol Bank" in audience and "anonymous member" not in audience, audience
    shot(driver, cfg, "publish.png")
    # Review what will be signed, then sign.
    driver.find_element(By.ID, "review").click()
    wait(driver, lambda d: d.find_elements(By.ID, "signed-preview"), "the review before signing")
    driver.find_element(By.ID, "publish").click()
    wait(driver, lambda d: d.find_elements(By.ID, "published"), "the publish result")
    log("ok: published an AMBER item to org:bob-bank from the form (preview named only bob-bank)")

    # The coordinator's bulletin composer.
    bulletin_title = "INC-2026-043: rotate npm tokens now"
    driver.find_element(By.ID, "b-title").send_keys(bulletin_title)
    driver.find_element(By.ID, "b-body").send_keys("Tokens in CI may have leaked via live-pkg.")
    driver.find_element(By.ID, "bul-tlp-green").click()
    driver.find_element(By.ID, "publish-bulletin").click()
    wait(driver, lambda d: "Bulletin signed" in d.find_element(By.TAG_NAME, "main").text,
         "the bulletin result")
    driver.get(alice + "/")
    wait(driver, lambda d: bulletin_title in d.find_element(By.ID, "bulletins").text,
         "the bulletin pinned at the top")
    log("ok: a coordinator's bulletin from the composer is pinned at the top of the feed")

    # Bob's console gets the AMBER item.
    login(driver, links["bob"])
    wait(driver, lambda d: amber_title in feed_titles(d), "the AMBER item at bob-bank")
    row = driver.find_element(By.XPATH, "//tr[.//a[text()='%s']]" % amber_title)
    assert "TLP:AMBER" in row.text, row.text
    log("ok: the AMBER item arrived at bob-bank's console")
    shot(driver, cfg, "feed-bob.png")

    # Carol's console (served by `run --ui`) never sees it: a later GREEN
    # marker proves carol is caught up past it.
    marker = "marker published after the amber item"
    publish_cli(cfg, "--domain", "marker.example", "--tlp", "green", "--title", marker)
    login(driver, links["carol"])
    wait(driver, lambda d: marker in feed_titles(d), "the marker at carol-bank")
    assert amber_title not in driver.page_source, "carol-bank sees the AMBER item"
    driver.get(origin(links["carol"]) + "/search?q=amber-only")
    assert amber_title not in driver.page_source
    log("ok: carol-bank's console never shows the AMBER item (caught up past it)")

    # Status (carol's console runs inside the daemon, so it lists the sinks).
    driver.get(origin(links["carol"]) + "/status")
    status = driver.find_element(By.ID, "status").text
    assert "connected over mutual TLS" in status and "JSON Lines" in status, status
    log("ok: the status page shows the hub connection, cursor, counts and sinks")
    shot(driver, cfg, "status.png")

    # Keyboard: the first Tab reaches the skip link.
    driver.find_element(By.TAG_NAME, "body").send_keys("\t")
    focused = driver.execute_script("return document.activeElement.textContent")
    assert focused == "Skip to content", focused
    log("ok: keyboard users reach a skip link first")


def main():
    cfg = json.load(open(sys.argv[1]))
    os.makedirs(cfg["screenshots"], exist_ok=True)
    profile = tempfile.mkdtemp(prefix="isac-chromium-")
    driver = browser(profile)
    try:
        run(driver, cfg)
        log("ALL OK")
        return 0
    except Exception:
        traceback.print_exc()
        try:
            log("url: " + driver.current_url)
            driver.save_screenshot(os.path.join(os.path.dirname(sys.argv[1]), "failure.png"))
            log(driver.find_element(By.TAG_NAME, "body").text[:3000])
        except Exception:
            pass
        return 1
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())
