#!/usr/bin/env bash
# Build the browser libraries into static/vendor/ from the npm packages pinned in
# package.json / package-lock.json. Nothing is fetched at run time: pages load only
# files under static/.
#
#   static/vendor/katex/         katex.min.js, katex.min.css, fonts/, contrib/auto-render.min.js
#   static/vendor/mermaid/       mermaid.esm.min.mjs + chunks/ (the ES-module build pages import, split so a
#                                flowchart loads well under 1 MB), mermaid.min.js (the one-file build, for tests)
#   static/vendor/chart.js/      chart.umd.js (source-map comments are stripped from every file)
#   static/vendor/htmx/          htmx.min.js
#   static/vendor/codemirror.bundle.js   static/src/editor.js bundled by esbuild (window.GradlabEditor)
#   tests/vendor/axe.min.js      axe-core, for the browser tests' accessibility check only: outside
#                                static/, so no page and no collectstatic ever serves it
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
cp node_modules/mermaid/dist/mermaid.min.js node_modules/mermaid/dist/mermaid.esm.min.mjs "$vendor.tmp/mermaid/"
mkdir -p "$vendor.tmp/mermaid/chunks/mermaid.esm.min"
find node_modules/mermaid/dist/chunks/mermaid.esm.min -maxdepth 1 -name '*.mjs' \
  -exec cp {} "$vendor.tmp/mermaid/chunks/mermaid.esm.min/" \;
cp node_modules/chart.js/dist/chart.umd.js "$vendor.tmp/chart.js/"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor.tmp/htmx/"
node_modules/.bin/esbuild static/src/editor.js --bundle --minify --format=iife --target=es2020 \
  --log-level=warning --outfile="$vendor.tmp/codemirror.bundle.js"
# Source maps are not shipped. A vendored file that still names one would make the
# production static storage (ManifestStaticFilesStorage) look for it and fail at
# collectstatic, so every such comment (//# or /*# sourceMappingURL=...) is removed.
find "$vendor.tmp" -type f \( -name '*.js' -o -name '*.mjs' -o -name '*.css' \) -print0 | while IFS= read -r -d '' file; do
  if grep -q 'sourceMappingURL=' "$file"; then
    sed -i -E -e 's@^[[:space:]]*//[#@][[:space:]]*sourceMappingURL=[^[:space:]]*[[:space:]]*$@@' \
      -e 's@/\*[#@][[:space:]]*sourceMappingURL=[^*]*\*/@@g' "$file"
    if grep -qE '[#@][[:space:]]*sourceMappingURL=' "$file"; then
      echo "error: $file still names a source map; extend the rule above" >&2
      exit 1
    fi
  fi
done
mkdir -p tests/vendor
cp node_modules/axe-core/axe.min.js tests/vendor/axe.min.js
echo "$inputs_sum" >"$vendor.tmp/.build.sha256"
rm -rf "$vendor"
mv "$vendor.tmp" "$vendor"
