# Shared set-up for scripts/test and scripts/demo (sourced, not run). Progress goes to stderr,
# so what a script prints on stdout (e.g. `./scripts/demo --dry-run`) is its own.

# setup_venv EXTRA: create .venv if missing and install the package with that extra, once per change
# of pyproject.toml (a stamp file remembers what was installed).
setup_venv() {
  local extra="$1" python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($python --version)" >&2
    "$python" -m venv .venv
  fi
  local stamp=".venv/.installed-$extra" want
  want="$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[setup] installing sora-widgets[$extra] into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extra]"
    echo "$want" > "$stamp"
  fi
}

# setup_chromium: Debian's chromium for the browser tests (Playwright drives it; no browser download).
setup_chromium() {
  if [ -x /usr/bin/chromium ]; then return; fi
  echo "[setup] installing Debian's chromium" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium fonts-dejavu-core
}
