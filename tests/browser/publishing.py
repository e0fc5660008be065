#!/usr/bin/env python3
"""Publishing and reading in the analyst console (issue 22), in headless
Chromium (Debian's chromium and chromium-driver, Selenium from PyPI).

Started by tests/tests/e2e/console_publishing.rs, which runs a real hub, two
enrolled agents (`member-agent run --ui`: alice-bank, a coordinator, and
bob-bank) and passes one JSON file:

  links        {"alice": URL, "bob": URL}  one-time login links
  agent_bin    path of the member-agent binary
  alice_state  alice's state dir
  bulletin     id of a bulletin whose Markdown body holds a <script>
  related      id of the indicator the bulletin names
  retracted    id of an indicator alice retracted
  amber        id of an AMBER item alice shared with org:bob-bank
  screenshots  directory for the PNGs

Prints one "ok: ..." line per check and exits 0, or prints what failed
and exits 1. Nothing asserts time: every wait is for a condition.
"""

import json
import os
import subprocess
import sys
import tempfile
import traceback

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console import TIMEOUT, browser, log, no_alert, origin, shot, wait  # noqa: E402


def login(driver, link):
    driver.get(link)
    wait(driver, lambda d: d.find_elements(By.ID, "feed"), "the feed after logging in")


def held(cfg):
    out = subprocess.run(
        [cfg["agent_bin"], "--state-dir", cfg["alice_state"], "list", "--json"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def fill(driver, field_id, text):
    el = driver.find_element(By.ID, field_id)
    el.clear()
    el.send_keys(text)


def run(driver, cfg):
    links = cfg["links"]
    alice = origin(links["alice"])
    login(driver, links["alice"])
    log("ok: logged in")

    # 1. The analyst's report: threat and imitates typed into Versions.
    refused_title = "axois typosquat (must not be signed)"
    driver.get(alice + "/publish")
    Select(driver.find_element(By.ID, "kind")).select_by_value("package")
    fill(driver, "value", "pkg:npm/axois")
    fill(driver, "versions", "threat=typosquat\nimitates=pkg:npm/axios")
    fill(driver, "title", refused_title)
    driver.find_element(By.ID, "ind-tlp-green").click()
    driver.find_element(By.ID, "review").click()
    wait(driver, lambda d: d.find_elements(By.ID, "err-versions"), "the refusal next to Versions")
    err = driver.find_element(By.ID, "err-versions").text
    assert "versions[0]" in err and "threat=typosquat" in err, err
    assert driver.find_element(By.ID, "versions").get_attribute("aria-invalid") == "true"
    # Right after the Versions box, and the box keeps what was typed.
    follows = driver.execute_script(
        "return document.getElementById('versions').nextElementSibling.id")
    assert follows == "err-versions", follows
    assert "imitates=pkg:npm/axios" in driver.find_element(By.ID, "versions").get_attribute("value")
    assert "Not signed" in driver.find_element(By.ID, "refused").text
    assert not driver.find_elements(By.ID, "signed-preview")
    assert not driver.find_elements(By.ID, "publish"), "a sign button after a refusal"
    shot(driver, cfg, "publish-refused.png")
    log("ok: Versions holding threat= and imitates= text is refused next to the field")

    # A typosquat with no imitates: refused next to Imitates.
    fill(driver, "versions", "1.0.0")
    Select(driver.find_element(By.ID, "threat")).select_by_value("typosquat")
    driver.find_element(By.ID, "review").click()
    wait(driver, lambda d: d.find_elements(By.ID, "err-imitates"), "the refusal next to Imitates")
    assert not driver.find_elements(By.ID, "err-versions"), "1.0.0 is an npm version"
    log("ok: a typosquat without imitates is refused next to Imitates")

    # 2. Three domains pasted at once: three statements, the title untouched.
    title = "three C2 domains pasted at once"
    driver.get(alice + "/publish")
    Select(driver.find_element(By.ID, "kind")).select_by_value("network")
    assert not driver.find_element(By.ID, "fields-package").is_displayed(), \
        "package fields shown for a network indicator"
    fill(driver, "value", "c2-one.example\nc2-two.example\nc2-three.example")
    fill(driver, "title", title)
    driver.find_element(By.ID, "ind-tlp-green").click()
    driver.find_element(By.ID, "review").click()
    wait(driver, lambda d: d.find_elements(By.ID, "signed-preview"), "the review")
    review = driver.find_element(By.ID, "signed-preview").text
    assert "3 statements to sign" in review, review
    for domain in ["c2-one.example", "c2-two.example", "c2-three.example"]:
        assert domain in review, (domain, review)
    assert driver.find_element(By.ID, "title").get_attribute("value") == title
    log("ok: three pasted domains are three statements in the review")

    # 3. The preview before signing: the signed fields, nothing sent yet.
    details = driver.find_elements(By.CSS_SELECTOR, "#signed-preview details summary")
    assert len(details) == 3, len(details)
    details[0].click()
    signed = driver.find_element(By.CSS_SELECTOR, "#signed-preview details pre").text
    assert '"tlp": "green"' in signed and '"domain": "c2-one.example"' in signed, signed
    assert not driver.find_elements(By.ID, "published")
    assert not any(i["value"] == "c2-one.example" for i in held(cfg)), "signed before signing"
    shot(driver, cfg, "publish-review.png")
    log("ok: nothing is signed before the review")

    driver.find_element(By.ID, "publish").click()
    wait(driver, lambda d: d.find_elements(By.ID, "published"), "the publish result")
    new_links = driver.find_elements(By.CSS_SELECTOR, "#published a.published-link")
    assert len(new_links) == 3, driver.find_element(By.ID, "published").text
    log("ok: after signing, a link to each new item")

    def stored(d):
        values = {i["value"] for i in held(cfg)}
        return {"c2-one.example", "c2-two.example", "c2-three.example"} <= values

    wait(driver, stored, "the three new items back from the hub")
    new_links = driver.find_elements(By.CSS_SELECTOR, "#published a.published-link")
    new_links[0].click()
    wait(driver, lambda d: d.find_elements(By.ID, "observable"), "the new item's page")
    assert driver.find_element(By.ID, "observable").text == "c2-one.example"
    assert driver.find_element(By.ID, "item-title").text == title
    log("ok: the new item page opens with its summary")

    items = [i for i in held(cfg) if i["title"] == title]
    assert sorted(i["value"] for i in items) == \
        ["c2-one.example", "c2-three.example", "c2-two.example"], items
    assert all("example" not in i["title"] for i in items), items
    log("ok: every pasted domain was published, none in the title")
    assert not any(i["title"] == refused_title for i in held(cfg)), "the refused form was signed"
    log("ok: the refused form signed nothing")

    # 4. The bulletin: Markdown at the top, the script as text.
    driver.get(alice + "/item/" + cfg["bulletin"])
    wait(driver, lambda d: d.find_elements(By.ID, "bulletin-body"), "the bulletin page")
    text = driver.find_element(By.ID, "bulletin-body")
    assert '<script>window.__xss=1;alert("xss")</script>' in text.text, text.text
    assert text.find_elements(By.TAG_NAME, "strong"), "no bold from **must**"
    assert text.find_elements(By.TAG_NAME, "h4"), "no heading from ##"
    hrefs = [a.get_attribute("href") for a in text.find_elements(By.TAG_NAME, "a")]
    assert hrefs == ["https://example.org/advisory"], hrefs
    assert no_alert(driver) and driver.execute_script("return window.__xss === undefined")
    assert not driver.find_elements(By.ID, "sight"), "We saw this on a bulletin"
    first = driver.execute_script(
        "var m = document.querySelector('main');"
        "return [m.querySelector('#bulletin-body').getBoundingClientRect().top,"
        " m.querySelector('#summary-h').getBoundingClientRect().top]")
    assert first[0] < first[1], first
    related = driver.find_element(By.ID, "related")
    assert "token-stealer posts npm tokens" in related.text, related.text
    assert related.find_element(By.CSS_SELECTOR, "a[href='/item/%s']" % cfg["related"])
    shot(driver, cfg, "bulletin.png")
    log("ok: the bulletin's Markdown is rendered at the top, its <script> shown as text")

    # 5. The retracted item: a banner with who, when, why; no sighting.
    driver.get(alice + "/item/" + cfg["retracted"])
    wait(driver, lambda d: d.find_elements(By.ID, "retracted"), "the retraction banner")
    banner = driver.find_element(By.ID, "retracted")
    assert "Retracted by" in banner.text and "alice-bank" in banner.text, banner.text
    assert "a sinkhole of a security vendor, not C2" in banner.text, banner.text
    width = driver.execute_script(
        "var b = document.getElementById('retracted').getBoundingClientRect();"
        "var m = document.getElementById('main').getBoundingClientRect();"
        "return [b.width, m.width]")
    assert width[0] >= width[1] * 0.9, width
    assert not driver.find_elements(By.ID, "sight"), "sighting action on a retracted item"
    shot(driver, cfg, "retracted.png")
    log("ok: the retracted item opens with a banner and takes no sighting")

    # 6. AMBER at its recipient: "shared with you", not commitments.
    login(driver, links["bob"])
    bob = origin(links["bob"])
    driver.get(bob + "/item/" + cfg["amber"])
    wait(driver, lambda d: d.find_elements(By.ID, "shared-with"), "the AMBER item at bob-bank")
    shared = driver.find_element(By.ID, "shared-with").text
    assert shared == "shared with you (bob-bank)", shared
    assert "null" not in driver.find_element(By.TAG_NAME, "main").text
    log("ok: bob reads the AMBER item as shared with bob-bank")


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
