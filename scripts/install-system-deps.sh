#!/usr/bin/env bash
# Install the Debian packages Gradlab needs, when missing.
#   install-system-deps.sh run   -> what `make run` needs: nodejs/npm (asset build), bubblewrap + libseccomp2 (sandbox)
#   install-system-deps.sh test  -> the above plus chromium and fonts (browser tests), python3-venv, and
#                                   caddy, openssl, iproute2 (the production smoke test)
# Without root or sudo, `run` only warns (the site still runs; the sandbox reports a lower isolation level).
set -euo pipefail
profile="${1:-test}"
need=()
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
ls /usr/lib/*-linux-gnu/libseccomp.so.2 >/dev/null 2>&1 || need+=(libseccomp2)
if [ "$profile" = "test" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
  # tests/test_sandbox_debian_venv.py builds a venv of Debian's own python3
  if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1; then need+=(python3-venv); fi
  command -v caddy >/dev/null 2>&1 || need+=(caddy)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v ip >/dev/null 2>&1 || need+=(iproute2)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"
  elif [ "$profile" = "run" ]; then
    echo "warning: cannot install ${need[*]} without root; install them with apt-get for the full sandbox" >&2
    exit 0
  else
    echo "error: need root (or passwordless sudo) to install ${need[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
