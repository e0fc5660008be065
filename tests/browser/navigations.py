#!/usr/bin/env python3
"""Many page loads in a row in headless Chromium must all complete (issue
22: the seventh load in a row stalled for a minute while the live feed's
event streams from earlier pages held the browser's six connections).

Started by tests/tests/e2e/console.rs with one JSON file:

  link         the one-time login link of a `member-agent run --ui` console
  agent_bin    path of the member-agent binary
  publisher    state dir of another member, publishing while pages load

Every navigation has a per-load timeout far above a normal load (a stall is
the failure signal; nothing asserts speed). Prints "ok: ..." lines and exits
0, or prints what failed and exits 1.
"""

import json
import subprocess
import sys
import tempfile
import threading
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# A normal load takes well under a second; the stall this guards against
# lasted about 60 s. 30 s is generous on a busy machine and still fails it.
LOAD_TIMEOUT = 30


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
    driver = webdriver.Chrome(
        service=Service(executable_path="/usr/bin/chromedriver"), options=opts
    )
    driver.set_page_load_timeout(LOAD_TIMEOUT)
    return driver


def origin(link):
    return link.split("/login", 1)[0]


class Loads:
    def __init__(self, driver, base):
        self.driver, self.base, self.n = driver, base, 0

    def go(self, path, expect_id):
        """Navigates the way an analyst does (a link or a form, i.e. a new
        history entry) and waits for the page; a stall raises."""
        self.n += 1
        url = self.base + path
        try:
            self.driver.get(url)
            WebDriverWait(self.driver, LOAD_TIMEOUT, poll_frequency=0.1).until(
                lambda d: d.find_elements(By.ID, expect_id)
            )
        except Exception as e:
            raise AssertionError(
                "load %d (%s) did not complete within %d s" % (self.n, path, LOAD_TIMEOUT)
            ) from e


def publisher(cfg, stop, published):
    # Items arriving while the pages load, so `run --ui` follows the hub and
    # the open event streams have something to send.
    i = 0
    while not stop.is_set():
        i += 1
        out = subprocess.run(
            [cfg["agent_bin"], "--state-dir", cfg["publisher"], "publish",
             "--domain", "nav-%d.example" % i, "--tlp", "green",
             "--title", "arrived during navigation %d" % i],
            capture_output=True, text=True, timeout=120,
        )
        if out.returncode == 0:
            published.append(i)
        stop.wait(0.5)


def run(driver, cfg):
    base = origin(cfg["link"])
    driver.get(cfg["link"])
    WebDriverWait(driver, LOAD_TIMEOUT).until(lambda d: d.find_elements(By.ID, "feed"))
    log("ok: logged in")
    loads = Loads(driver, base)

    # An item held in two revisions: one row, the newest, marked updated.
    for path, table in [("/", "feed-rows"), ("/search?q=revised.example", "results")]:
        loads.go(path, table)
        rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "#%s tr" % table)
                if "revised.example" in r.text]
        assert len(rows) == 1, "%s: %d rows for the revised item" % (path, len(rows))
        text = rows[0].text
        assert "revised indicator, confirmed" in text, text
        assert "updated (revision 2)" in text, text
        href = rows[0].find_element(By.CSS_SELECTOR, "a").get_attribute("href")
        assert "/item/" in href, href
    log("ok: a revised item shows once, marked updated, in the feed and in search")

    # The analyst's sequence: the feed, five filter variants, one more.
    feeds = [
        "/",
        "/?kind=network",
        "/?kind=network&min_severity=high",
        "/?tlp=green",
        "/?ecosystem=npm",
        "/?kind=package&tlp=clear",
        "/",
    ]
    for path in feeds:
        loads.go(path, "feed")
    log("ok: the feed, five filter variants and one more feed load all completed")

    # An item page after six feed loads.
    for path in feeds[1:]:
        loads.go(path, "feed")
    link = driver.find_element(By.CSS_SELECTOR, "#feed-rows a").get_attribute("href")
    loads.go(link[len(base):], "main")
    assert "/item/" in driver.current_url, driver.current_url
    log("ok: an item page after six feed loads completed")

    # Twenty navigations mixing every page with a live stream and without.
    pages = [("/", "feed"), ("/search?q=nav", "main"), ("/?kind=network", "feed"),
             ("/status", "main"), ("/?min_severity=info", "feed")]
    for k in range(20):
        path, el = pages[k % len(pages)]
        loads.go(path, el)
    log("ok: twenty more navigations completed")

    # Back and forward (pages restored from the back/forward cache) too.
    for _ in range(8):
        driver.back()
    for _ in range(8):
        driver.forward()
    loads.go("/?tlp=green", "feed")
    log("ok: a load after going back and forward completed")

    # The live feed still works on the page that is open now.
    title = "live after %d loads" % loads.n
    out = subprocess.run(
        [cfg["agent_bin"], "--state-dir", cfg["publisher"], "publish",
         "--domain", "live-after.example", "--tlp", "green", "--title", title],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    WebDriverWait(driver, 90, poll_frequency=0.25).until(
        lambda d: title in [a.text for a in d.find_elements(By.CSS_SELECTOR, "#feed-rows a")]
    )
    log("ok: the open page still receives live items (%d loads in all)" % loads.n)


def main():
    cfg = json.load(open(sys.argv[1]))
    stop, published = threading.Event(), []
    t = threading.Thread(target=publisher, args=(cfg, stop, published), daemon=True)
    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            t.start()
            run(driver, cfg)
            stop.set()
            t.join(timeout=120)
            assert published, "nothing was published while the pages loaded"
            log("ok: %d items arrived during the navigations" % len(published))
            log("ALL OK")
        except Exception:
            stop.set()
            traceback.print_exc()
            sys.exit(1)
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
