"""Check a JUnit XML report the way a CI system would read it.

Used by the Rust integration tests to prove that `lmi test --junit FILE` writes a usable report:

    python check_junit.py FILE

1. Validates FILE against junit.xsd (the JUnit schema of Jenkins' xUnit plugin) with `xmlschema`.
   On a violation (or malformed XML) prints {"valid": false, "error": "..."} and exits 1.
2. Reads FILE with `junitparser` and prints one JSON object on stdout:
   {"valid": true, "suites": [{"name", "tests", "failures", "skipped",
     "cases": [{"name", "classname", "result", "type", "message", "text"}]}]}
   where result is "passed", "failure", "skipped" or "error", and type/message/text are those
   of the case's <failure>/<error>/<skipped> element (null when absent, and for passed cases).

Needs the pinned xmlschema and junitparser from tests/localaws/requirements.txt.
"""

import json
import sys
from pathlib import Path
from xml.etree.ElementTree import ParseError

import xmlschema
from junitparser import Error, Failure, JUnitXml, Skipped

XSD = Path(__file__).with_name("junit.xsd")
RESULTS = {Failure: "failure", Error: "error", Skipped: "skipped"}


def case_json(case):
    outcome = case.result[0] if case.result else None
    return {
        "name": case.name,
        "classname": case.classname,
        "result": RESULTS[type(outcome)] if outcome is not None else "passed",
        "type": outcome.type if outcome is not None else None,
        "message": outcome.message if outcome is not None else None,
        "text": outcome.text if outcome is not None else None,
    }


def main(path):
    try:
        xmlschema.XMLSchema(str(XSD)).validate(path)
    except (xmlschema.XMLSchemaValidationError, ParseError) as e:
        reason = getattr(e, "reason", None) or str(e)
        where = getattr(e, "path", None)
        print(json.dumps({"valid": False, "error": f"{reason} (at {where})" if where else reason}))
        return 1
    suites = [
        {
            "name": suite.name,
            "tests": suite.tests,
            "failures": suite.failures,
            "skipped": suite.skipped,
            "cases": [case_json(case) for case in suite],
        }
        for suite in JUnitXml.fromfile(path)
    ]
    print(json.dumps({"valid": True, "suites": suites}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
