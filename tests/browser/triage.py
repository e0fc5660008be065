#!/usr/bin/env python3
"""The console's triage in headless Chromium (issue 22): sorting, paging
that keeps the filters, several values per filter and a date range, j/k
and /, observables found in a pasted text block, and "new since my last
visit" across a restart of the console.

Started by tests/tests/e2e/console_triage.rs with one JSON file:

  link    the one-time login link of a `member-agent ui` over a store
          holding 132 items (130 "triage item NNN", a scoped npm package
          signed as pkg:npm/%40acme/widget, the domain c2.triage.example)
  resume  a path: after printing "PAUSE: restart the console" the script
          waits for this file, {"link": URL}, the login link of a new
          console over the same store (three new items arrived meanwhile)
  today   YYYY-MM-DD (UTC), for the date filter

Prints one "ok: ..." line per check and "ALL OK", or what failed (exit 1).
Waits for conditions with generous timeouts; nothing asserts time.
"""

import json
import os
import sys
import tempfile
import time
import traceback
from urllib.parse import parse_qs, urlparse

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 90
SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
TLP_RANK = {"TLP:CLEAR": 0, "TLP:GREEN": 1, "TLP:AMBER": 2, "TLP:AMBER+STRICT": 3, "TLP:RED": 4}


def log(msg):
    print(msg, flush=True)


def browser(profile_dir):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1366,900", "--user-data-dir=" + profile_dir]:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"),
                              options=opts)
    driver.set_page_load_timeout(TIMEOUT)
    return driver


def wait(driver, cond, what):
    try:
        return WebDriverWait(
            driver, TIMEOUT, poll_frequency=0.2,
            ignored_exceptions=[StaleElementReferenceException, NoSuchElementException],
        ).until(lambda d: cond(d))
    except Exception as e:
        raise AssertionError("timed out waiting for " + what) from e


def origin(link):
    return link.split("/login", 1)[0]


def login(driver, link):
    driver.get(link)
    wait(driver, lambda d: d.find_elements(By.ID, "feed"), "the feed after logging in")


def rows(driver):
    """(id, title, severity word, TLP label, kind) of each feed row."""
    out = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "#feed-rows tr"):
        tds = tr.find_elements(By.TAG_NAME, "td")
        sev = tds[4].text.split()[-1]
        out.append((tr.get_attribute("data-item"), tds[3].find_element(By.TAG_NAME, "a").text,
                    sev, tds[0].text, tds[1].text))
    return out


def go(driver, url, expect_id="feed"):
    driver.get(url)
    wait(driver, lambda d: d.find_elements(By.ID, expect_id), url)


def params(driver):
    return parse_qs(urlparse(driver.current_url).query)


def unread(driver):
    found = driver.find_elements(By.ID, "unread-count")
    return int(found[0].text) if found else 0


def phase1(driver, cfg):
    base = origin(cfg["link"])
    login(driver, cfg["link"])

    # First visit: everything held is new; "Mark all as read" clears it.
    n = unread(driver)
    assert n >= 130, "first visit: %d new" % n
    assert driver.find_elements(By.CSS_SELECTOR, "#feed-rows tr.new"), "no row marked new"
    driver.find_element(By.ID, "mark-read").click()
    wait(driver, lambda d: d.find_elements(By.ID, "feed") and not d.find_elements(By.ID, "unread"),
         "the unread count to go")
    log("ok: a first visit counts every held item as new; marking all read clears it")

    # Sorting by a column head, on the server: the whole list, not a page.
    driver.find_element(By.LINK_TEXT, "Severity").click()
    wait(driver, lambda d: "sort" in params(d), "the severity order")
    first = rows(driver)
    ranks = [SEVERITY[r[2]] for r in first]
    assert ranks == sorted(ranks, reverse=True), ranks
    assert ranks[0] == 4, "highest first: %s" % ranks[:5]
    head = driver.find_element(By.CSS_SELECTOR, "th[aria-sort]")
    assert head.get_attribute("aria-sort") == "descending" and "Severity" in head.text, head.text
    crit = driver.find_element(By.CSS_SELECTOR, "#feed-rows tr.sev-critical")
    color = crit.find_element(By.CSS_SELECTOR, ".sev").value_of_css_property("background-color")
    assert color not in ("rgba(0, 0, 0, 0)", "transparent"), "critical badge without colour"
    assert "▲▲" in crit.text and "critical" in crit.text, crit.text
    driver.find_element(By.PARTIAL_LINK_TEXT, "Severity").click()
    wait(driver, lambda d: params(d).get("dir") == ["asc"], "the ascending order")
    ranks = [SEVERITY[r[2]] for r in rows(driver)]
    assert ranks == sorted(ranks) and ranks[0] == 0, ranks[:10]
    log("ok: sorting by severity, both ways, server-side")

    # Paging keeps the filters and the order; pages are disjoint and complete.
    go(driver, base + "/?kind=network&kind=package&kind=artifact&sort=title&dir=asc")
    count = driver.find_element(By.ID, "feed-count").text
    total = int(count.split()[0])
    assert total == 132, count
    page1 = rows(driver)
    assert len(page1) == 100 or len(page1) == total, len(page1)
    seen = list(page1)
    while driver.find_elements(By.ID, "older"):
        driver.find_element(By.ID, "older").click()
        wait(driver, lambda d: "page" in params(d), "the next page")
        p = params(driver)
        assert p["kind"] == ["network", "package", "artifact"] and p["sort"] == ["title"], p
        assert "upto" in p, p
        seen.extend(rows(driver))
    ids = [r[0] for r in seen]
    assert len(ids) == len(set(ids)) == total, (len(ids), len(set(ids)), total)
    titles = [r[1].lower() for r in seen]
    assert titles == sorted(titles), "not in title order across pages"
    assert set(r[4] for r in seen) == {"network", "package", "artifact"}, set(r[4] for r in seen)
    log("ok: pages keep the filters and order; no row twice, none lost")

    # Several values per filter, TLP AMBER or stricter, ecosystems, dates.
    go(driver, base + "/?min_tlp=amber&ecosystem=npm,pypi")
    got = rows(driver)
    assert got, "nothing AMBER or stricter in npm/pypi"
    assert all(TLP_RANK[r[3]] >= 2 for r in got), set(r[3] for r in got)
    assert all(r[4] == "package" for r in got), set(r[4] for r in got)
    go(driver, base + "/")
    form = driver.find_element(By.ID, "filters")
    for value in ["artifact", "network"]:
        form.find_element(By.CSS_SELECTOR, "input[name=kind][value='%s']" % value).click()
    # A date input's typing order depends on the locale: set its value.
    driver.execute_script("arguments[0].value = arguments[1]",
                          form.find_element(By.CSS_SELECTOR, "input[name=from]"), cfg["today"])
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: params(d).get("kind") == ["artifact", "network"], "the kind filter")
    assert params(driver).get("from") == [cfg["today"]], params(driver)
    kinds = set(r[4] for r in rows(driver))
    assert kinds == {"artifact", "network"}, kinds
    go(driver, base + "/?to=2000-01-01")
    assert driver.find_elements(By.ID, "empty"), "items created before 2000?"
    log("ok: several kinds, TLP AMBER or stricter, ecosystems and a date range")

    # Keyboard.
    go(driver, base + "/")
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("j")
    body.send_keys("j")
    active = driver.switch_to.active_element
    second = driver.find_elements(By.CSS_SELECTOR, "#feed-rows tr")[1]
    assert active.get_attribute("href") == second.find_element(
        By.CSS_SELECTOR, "a[href^='/item/']").get_attribute("href"), "j did not reach row 2"
    active.send_keys("k")
    first_row = driver.find_elements(By.CSS_SELECTOR, "#feed-rows tr")[0]
    assert "current" in first_row.get_attribute("class"), first_row.get_attribute("class")
    driver.switch_to.active_element.send_keys("/")
    wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "q",
         "/ to focus the search box")
    log("ok: j / k move through the rows, / goes to search")

    # A pasted text block.
    go(driver, base + "/search", "paste")
    text = ("Incident notes, 3 Dec:\n"
            " - build pulled pkg:npm/@acme/widget@2.0.0 from the mirror\n"
            " - beacon to hxxps://c2[.]triage[.]example/gate.php every 60 s\n"
            " - also seen: triage-3.example, never-seen-before.example and 198.51.100.23\n")
    driver.find_element(By.ID, "paste").send_keys(text)
    driver.find_element(By.ID, "extract").click()
    wait(driver, lambda d: d.find_elements(By.ID, "observables"), "the observables table")
    table = driver.find_element(By.ID, "observables")
    known = {tr.find_elements(By.TAG_NAME, "td")[1].text: tr.find_elements(By.TAG_NAME, "td")[2].text
             for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert "acme widget backdoored" in known["pkg:npm/@acme/widget@2.0.0"], known
    assert "triage C2 domain" in known["https://c2.triage.example/gate.php"], known
    assert "triage item 003" in known["triage-3.example"], known
    assert known["never-seen-before.example"] == "unknown", known
    assert known["198.51.100.23"] == "unknown", known
    href = driver.find_element(By.ID, "publish-unknown").get_attribute("href")
    q = parse_qs(urlparse(href).query)["observables"][0].split("\n")
    assert q == ["never-seen-before.example", "198.51.100.23"], q
    summary = driver.find_element(By.ID, "found-summary").text
    assert summary.startswith("5 observable(s) found: 3 known here, 2 unknown"), summary
    log("ok: a pasted text block finds the known indicators and offers to publish the rest")

    go(driver, base + "/search?q=pkg%3Anpm%2F%40acme%2Fwidget%402.0.0", "main")
    assert "acme widget backdoored" in driver.find_element(By.ID, "results").text
    go(driver, base + "/search?q=https%3A%2F%2Fc2.triage.example%2Fx", "main")
    assert "triage C2 domain" in driver.find_element(By.ID, "results").text
    log("ok: a purl with @ finds the item signed with %40; a URL finds its known domain")


def phase2(driver, cfg, link):
    base = origin(link)
    login(driver, link)
    n = unread(driver)
    assert n == 3, "after the restart: %d new" % n
    marked = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#feed-rows tr.new")]
    assert len(marked) == 3 and all("arrived while away" in t for t in marked), marked
    driver.find_element(By.ID, "only-new").click()
    wait(driver, lambda d: params(d).get("new") == ["1"], "only the new items")
    titles = sorted(r[1] for r in rows(driver))
    assert titles == ["arrived while away %d" % i for i in (1, 2, 3)], titles
    # Within the same visit the mark stays.
    go(driver, base + "/")
    assert unread(driver) == 3
    log("ok: after a restart, the three items that arrived are new, counted and shown alone")


def main():
    cfg = json.load(open(sys.argv[1]))
    profile = tempfile.mkdtemp(prefix="isac-chromium-")
    driver = browser(profile)
    try:
        phase1(driver, cfg)
        log("PAUSE: restart the console")
        deadline = time.time() + 300
        while not os.path.exists(cfg["resume"]):
            assert time.time() < deadline, "the console was not restarted"
            time.sleep(0.2)
        time.sleep(0.2)
        link = json.load(open(cfg["resume"]))["link"]
        phase2(driver, cfg, link)
        log("ALL OK")
        return 0
    except Exception:
        traceback.print_exc(file=sys.stdout)
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
