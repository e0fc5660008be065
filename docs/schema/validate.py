#!/usr/bin/env python3
"""Validates statements against docs/schema/statement.v2.schema.json with
the `jsonschema` package (draft 2020-12; scripts/install-deps pins it).

    validate.py FILE...      one JSON statement per file, or `-` to read
                             JSON Lines (one statement per line) from stdin

Prints one JSON line per statement: {"name", "valid", "errors"}; exits 0
when it read everything (valid or not), 2 on a file it cannot read.
"""
import json
import os
import sys

import jsonschema

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "statement.v2.schema.json")


def main(argv):
    with open(SCHEMA) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    items = []
    for arg in argv:
        if arg == "-":
            for n, line in enumerate(sys.stdin, 1):
                if line.strip():
                    items.append((f"stdin:{n}", json.loads(line)))
        else:
            with open(arg, "rb") as f:
                items.append((arg, json.loads(f.read())))
    for name, doc in items:
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
        print(json.dumps({"name": name, "valid": not errors, "errors": errors[:5]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
