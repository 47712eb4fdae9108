"""`rasa data validate`, failing on every warning but one kind it cannot know better about.

Rasa 3.6 warns that a response "is not used in any story or rule" also when a custom action
or a form uses it. Such a warning is accepted only if the response really is used: named in
actions/, asked for by a form (utter_ask_<slot>) or uttered by Rasa's own fallback action.
Anything else fails.
Run with the engine environment's python from the project root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
UNUSED = re.compile(r"The utterance '(\w+)' is not used in any story or rule")
# External intents are sent by the gateway (e.g. /EXTERNAL_handback), never said by shoppers.
EXTERNAL = re.compile(r"The intent 'EXTERNAL_\w+' is listed in the domain file, but is not found")
WARNING = re.compile(r"UserWarning: (.*)")
# Responses Rasa's own actions utter (action_default_fallback).
BUILTIN = {"utter_default"}


def used_outside_stories() -> set[str]:
    code = "\n".join(p.read_text() for p in (ROOT / "actions").rglob("*.py"))
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    names = set(domain.get("responses", {}))
    used = BUILTIN | {n for n in names if re.search(rf"[\"']{n}[\"']", code)}
    for form in (domain.get("forms") or {}).values():
        used |= {f"utter_ask_{slot}" for slot in form.get("required_slots", [])}
    return used


def main() -> int:
    rasa = Path(sys.executable).parent / "rasa"
    proc = subprocess.run(
        [str(rasa), "data", "validate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    output = proc.stdout + proc.stderr
    allowed = used_outside_stories()
    problems = []
    for line in output.splitlines():
        match = WARNING.search(line)
        if not match:
            continue
        unused = UNUSED.search(match.group(1))
        if unused and unused.group(1) in allowed:
            continue
        if EXTERNAL.search(match.group(1)):
            continue
        problems.append(match.group(1))
    if proc.returncode != 0:
        problems.append(f"rasa data validate exited {proc.returncode}")
    for problem in problems:
        print(f"  {problem}")
    print("data validation: " + ("clean" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
