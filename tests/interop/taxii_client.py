"""Interop check of the hub's TAXII 2.1 server with OASIS's own client
(`taxii2-client`) and validator (`stix2-validator`).

Run by tests/tests/e2e/taxii_interop.rs against a real hub:
    taxii_client.py URL USER PASSWORD CA_FILE EXPECTED_INDICATORS WRITE_USER WRITE_PASSWORD

Checks discovery, the API root, collections, paging through every object
with `next` and, separately, with `added_after` (from the manifest's
`date_added`), that no object is missed or repeated, that every object
passes the STIX 2.1 validator, that a read-only key's write is refused with
a TAXII error, and that a write-enabled key's `add_objects` completes and
the object is then served. Prints one JSON line of figures on success; exits 1 on a failure.
"""

import json
import os
import sys
import time

# requests lets these override an explicit session `verify` (psf/requests#3829);
# the hub's own CA must be the one trusted here.
for _name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_name, None)

import requests
from stix2validator import ValidationOptions, validate_instance
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import Server, as_pages


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    url, user, password, ca, expected, write_user, write_password = sys.argv[1:8]
    expected = int(expected)

    server = Server(f"{url}/taxii2/", user=user, password=password, verify=ca)
    if not server.title or not server.api_roots:
        fail("discovery has no title or API roots")
    root = server.api_roots[0]
    if "application/taxii+json;version=2.1" not in root.versions:
        fail(f"API root versions {root.versions}")
    by_title = {c.title: c for c in root.collections}
    if "Indicators" not in by_title or "Bulletins" not in by_title:
        fail(f"collections {sorted(by_title)}")
    indicators = by_title["Indicators"]
    if not indicators.can_read or indicators.can_write:
        fail("indicators must be readable and not writable")

    # Every object, following `next`.
    started = time.monotonic()
    objects = []
    pages = 0
    for envelope in as_pages(indicators.get_objects, per_request=100):
        objects.extend(envelope.get("objects", []))
        pages += 1
    next_secs = time.monotonic() - started
    ids = [o["id"] for o in objects]
    if len(set(ids)) != len(ids):
        fail("an object came twice while paging with next")
    named = [o for o in objects if o["type"] == "indicator"]
    if len(named) != expected:
        fail(f"{len(named)} indicators by next, expected {expected}")

    # The same set, paging with added_after from the manifest's date_added.
    seen = []
    after = None
    for _ in range(10_000):
        kwargs = {"limit": 250}
        if after:
            kwargs["added_after"] = after
        manifest = indicators.get_manifest(**kwargs).get("objects", [])
        if not manifest:
            break
        seen.extend(m["id"] for m in manifest)
        after = manifest[-1]["date_added"]
    if seen != ids:
        fail(f"added_after paging saw {len(seen)} objects, next paging {len(ids)}, or another order")

    # One object by id and its versions.
    first = objects[0]
    got = indicators.get_object(first["id"])["objects"]
    if got != [first]:
        fail("get_object does not return the listed object")
    versions = indicators.object_versions(first["id"])["versions"]
    if first["modified"] not in versions:
        fail(f"versions {versions} lack {first['modified']}")

    # Every served object is valid STIX 2.1.
    options = ValidationOptions(version="2.1")
    invalid = 0
    for o in objects:
        result = validate_instance(o, options)
        if not result.is_valid:
            invalid += 1
            if invalid <= 3:
                print(json.dumps(o), file=sys.stderr)
                for e in result.errors:
                    print(f"  {e}", file=sys.stderr)
    if invalid:
        fail(f"{invalid} objects refused by stix2-validator")

    # A write is refused with a TAXII error, whatever the client does.
    response = requests.post(
        indicators.objects_url,
        auth=(user, password),
        verify=ca,
        headers={
            "Accept": "application/taxii+json;version=2.1",
            "Content-Type": "application/taxii+json;version=2.1",
        },
        data=json.dumps({"objects": [first]}),
        timeout=30,
    )
    if response.status_code != 403 or response.json().get("http_status") != "403":
        fail(f"write answered {response.status_code} {response.text[:200]}")

    # A write with a write-enabled key, through the client's own add_objects.
    writer = Server(f"{url}/taxii2/", user=write_user, password=write_password, verify=ca)
    writable = {c.title: c for c in writer.api_roots[0].collections}["Indicators"]
    if not writable.can_write:
        fail("a --write key's Indicators collection is not writable")
    new_id = "indicator--7d0a3e0a-51f4-4b57-9a8c-4f7e0c2b6a11"
    submitted = {
        "type": "indicator", "spec_version": "2.1", "id": new_id,
        "created": "2026-11-20T10:00:00.000Z", "modified": "2026-11-20T10:00:00.000Z",
        "name": "submitted with taxii2-client", "indicator_types": ["malicious-activity"],
        "pattern": "[domain-name:value = 'c2.taxii-interop.example']", "pattern_type": "stix",
        "valid_from": "2026-11-20T10:00:00Z",
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    }
    status = writable.add_objects({"objects": [submitted]}, wait_for_completion=True, timeout=30)
    if status.status != "complete" or status.success_count != 1 or status.failure_count != 0:
        fail(f"add_objects status {status.status} {status.success_count}/{status.total_count}: {status.failures}")
    served = [o for envelope in as_pages(indicators.get_objects, per_request=1000)
              for o in envelope.get("objects", []) if o.get("name") == "submitted with taxii2-client"]
    if len(served) != 1 or served[0].get("x_isac_hub_attested") is not True:
        fail(f"the submitted object is served {len(served)} times: {served}")
    if not validate_instance(served[0], options).is_valid:
        fail("the submitted object is not valid STIX as served")

    # Wrong credentials are refused before anything is listed.
    try:
        Server(f"{url}/taxii2/", user=user, password="wrong", verify=ca).title
        fail("wrong password accepted")
    except (TAXIIServiceException, requests.HTTPError):
        pass

    print(json.dumps({
        "objects": len(objects),
        "indicators": len(named),
        "pages": pages,
        "seconds_by_next": round(next_secs, 3),
        "objects_per_s": round(len(objects) / next_secs) if next_secs else None,
    }))


if __name__ == "__main__":
    main()
