#!/usr/bin/env bash
# The Debian packages the tests need besides the venv: chromium (tests/test_ui.py renders the Dagster
# UI headless) and postgresql (tests/test_postgres_instance.py runs a throwaway server with initdb and
# pg_ctl, which Debian puts in /usr/lib/postgresql/<version>/bin). Installs the missing ones when it
# can (root with apt-get); otherwise stops at once, naming them and the command to run.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
  || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

install="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing the system packages the tests need: ${missing[*]}"
  bash -c "$install"
else
  echo "the tests need the system packages ${missing[*]}, which are not installed;" >&2
  echo "install them as root, e.g.: sudo sh -c '$install'" >&2
  exit 1
fi
