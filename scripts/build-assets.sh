#!/usr/bin/env bash
# Build the browser libraries into static/vendor/ from the npm packages pinned in
# package.json / package-lock.json. Nothing is fetched at run time: pages load only
# files under static/.
#
#   static/vendor/katex/         katex.min.js, katex.min.css, fonts/, contrib/auto-render.min.js
#   static/vendor/mermaid/       mermaid.min.js
#   static/vendor/chart.js/      chart.umd.js
#   static/vendor/htmx/          htmx.min.js
#   static/vendor/codemirror.bundle.js   static/src/editor.js bundled by esbuild (window.GradlabEditor)
#
# Fast when nothing changed: `npm ci` runs only when package-lock.json differs from the
# one node_modules/ was installed from, and the copy/bundle step only when its inputs
# (the lock, static/src/, this script) differ from the last build's.
set -euo pipefail
cd "$(dirname "$0")/.."

vendor=static/vendor
lock_stamp=node_modules/.gradlab-lock.sha256
build_stamp=$vendor/.build.sha256

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is missing; run scripts/install-system-deps.sh (or apt-get install nodejs npm)" >&2
  exit 1
fi

lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$lock_stamp" ] || [ "$(cat "$lock_stamp")" != "$lock_sum" ]; then
  echo "build-assets: npm ci (package-lock.json changed or node_modules/ missing)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" >"$lock_stamp"
fi

inputs_sum=$( (echo "$lock_sum"; sha256sum "$0" static/src/*.js) | sha256sum | cut -d' ' -f1)
if [ -f "$build_stamp" ] && [ "$(cat "$build_stamp")" = "$inputs_sum" ]; then
  exit 0
fi

echo "build-assets: copying libraries and bundling the editor into $vendor/"
rm -rf "$vendor.tmp"
mkdir -p "$vendor.tmp/katex/contrib" "$vendor.tmp/mermaid" "$vendor.tmp/chart.js" "$vendor.tmp/htmx"
katex=node_modules/katex/dist
cp "$katex/katex.min.js" "$katex/katex.min.css" "$vendor.tmp/katex/"
cp -r "$katex/fonts" "$vendor.tmp/katex/fonts"
cp "$katex/contrib/auto-render.min.js" "$vendor.tmp/katex/contrib/"
cp node_modules/mermaid/dist/mermaid.min.js "$vendor.tmp/mermaid/"
cp node_modules/chart.js/dist/chart.umd.js "$vendor.tmp/chart.js/"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor.tmp/htmx/"
node_modules/.bin/esbuild static/src/editor.js --bundle --minify --format=iife --target=es2020 \
  --log-level=warning --outfile="$vendor.tmp/codemirror.bundle.js"
echo "$inputs_sum" >"$vendor.tmp/.build.sha256"
rm -rf "$vendor"
mv "$vendor.tmp" "$vendor"
