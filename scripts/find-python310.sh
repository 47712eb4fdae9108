#!/usr/bin/env bash
# Prints the path of a working Python 3.10 (Rasa 3.6 needs it), or explains how to get one.
set -u
for candidate in "${PYTHON310:-}" python3.10; do
  [ -n "$candidate" ] || continue
  if path=$(command -v "$candidate" 2>/dev/null) && "$path" -c 'import sys, venv; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    echo "$path"; exit 0
  fi
done
if command -v pyenv >/dev/null 2>&1; then
  for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -V -r); do
    path="$(pyenv prefix "$version" 2>/dev/null)/bin/python"
    if [ -x "$path" ] && "$path" -c 'import venv' 2>/dev/null; then echo "$path"; exit 0; fi
  done
fi
cat >&2 <<'MSG'
No working Python 3.10 found (Rasa Open Source 3.6 needs Python 3.10).
Install one, then run make again:
  - pyenv:  pyenv install 3.10.13
  - Debian/Ubuntu: apt-get install python3.10 python3.10-venv (deadsnakes PPA on Ubuntu)
  - or point PYTHON310=/path/to/python3.10 at an existing one.
MSG
exit 1
