// Brings Markdown rendered by gradlab/markdown.py to life, on every page that has some
// (lessons, quiz explanations, exercise statements). Loaded by templates/base.html.
//
// - `.math[data-display]` elements hold TeX as text: KaTeX renders them in place. KaTeX
//   (script and stylesheet, URLs in this script tag's data-katex-src / data-katex-css)
//   is loaded only when a page has math.
// - `pre.mermaid` holds a diagram's source: Mermaid (its ES-module build, split in
//   chunks; URL in data-mermaid-src) is imported only when a diagram comes near the
//   viewport, and draws it as an SVG in a theme matching the colour scheme, redrawn
//   when the scheme changes.
// - a display formula wider than its column scrolls sideways: it gets keyboard focus
//   and a visible "scroll" cue (`is-overflowing`).
// - `.codeblock` gets a Copy button.
// - `.toc` links are marked `is-active` for the section being read.
//
// window.Gradlab.renderContent(root) does all of this for HTML inserted later (a quiz
// card swapped in by fetch). window.renderMathInElement(root) is kept as an alias of
// the math step, for scripts written against KaTeX's auto-render.
(function () {
  "use strict";

  var script = document.currentScript;
  var mermaidSrc = script ? script.getAttribute("data-mermaid-src") : null;
  var katexSrc = script ? script.getAttribute("data-katex-src") : null;
  var katexCss = script ? script.getAttribute("data-katex-css") : null;
  var darkScheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var COPIED_LABEL_MS = 1500;
  var DIAGRAM_MARGIN = "800px 0px"; // start loading Mermaid this far before a diagram scrolls in
  var mermaidLoading = null;
  var katexLoading = null;

  function loadKatex() {
    if (window.katex) return Promise.resolve(window.katex);
    if (!katexSrc) return Promise.reject(new Error("no data-katex-src on the lesson.js script tag"));
    if (!katexLoading) {
      if (katexCss) {
        var link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = katexCss;
        document.head.appendChild(link);
      }
      katexLoading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = katexSrc;
        tag.onload = function () {
          resolve(window.katex);
        };
        tag.onerror = function () {
          reject(new Error("could not load " + katexSrc));
        };
        document.head.appendChild(tag);
      });
    }
    return katexLoading;
  }

  function renderMath(root) {
    var nodes = (root || document).querySelectorAll(".math[data-display]:not(.is-rendered)");
    if (!nodes.length) return Promise.resolve();
    return loadKatex().then(
      function () {
        typeset(nodes);
        focusableScrollers(root); // typeset math can make a table or a block wider than its column
      },
      function (error) {
        console.warn("KaTeX could not be loaded; the TeX stays readable", error);
      }
    );
  }

  function typeset(nodes) {
    Array.prototype.forEach.call(nodes, function (node) {
      // Two renderContent calls can wait for KaTeX at once: a node typeset by the first is left alone.
      if (node.classList.contains("is-rendered")) return;
      var tex = node.textContent;
      try {
        window.katex.render(tex, node, {
          displayMode: node.getAttribute("data-display") === "true",
          throwOnError: false,
          output: "htmlAndMathml",
        });
        node.classList.add("is-rendered");
        node.setAttribute("data-tex", tex);
      } catch (error) {
        // Leave the TeX readable; a broken formula must not stop the others.
        console.warn("KaTeX could not render", tex, error);
      }
    });
    markOverflowing(nodes);
  }

  // A display formula wider than its column scrolls sideways; make that visible and reachable.
  function markOverflowing(nodes) {
    Array.prototype.forEach.call(nodes, function (node) {
      if (node.getAttribute("data-display") !== "true") return;
      var overflowing = node.scrollWidth > node.clientWidth + 1;
      node.classList.toggle("is-overflowing", overflowing);
      if (overflowing) {
        node.setAttribute("tabindex", "0");
        node.setAttribute("role", "region");
        node.setAttribute("aria-label", "Wide formula, scrolls sideways");
      } else if (node.getAttribute("tabindex") === "0") {
        node.removeAttribute("tabindex");
        node.removeAttribute("role");
        node.removeAttribute("aria-label");
      }
    });
  }

  function remarkAllOverflowing() {
    markOverflowing(document.querySelectorAll(".math.is-rendered[data-display='true']"));
  }

  function loadMermaid() {
    if (window.mermaid) return Promise.resolve(window.mermaid);
    if (!mermaidSrc) return Promise.reject(new Error("no data-mermaid-src on the lesson.js script tag"));
    if (!mermaidLoading) {
      // The ES-module build fetches only the chunks a flowchart needs (under 1 MB instead of 3.5).
      mermaidLoading = import(mermaidSrc).then(function (module) {
        return module.default;
      });
    }
    return mermaidLoading;
  }

  // Draw each diagram once it comes near the viewport (all at once without IntersectionObserver).
  function drawDiagramsWhenNear(root) {
    var nodes = Array.prototype.slice.call((root || document).querySelectorAll("pre.mermaid:not([data-processed])"));
    if (!nodes.length) return Promise.resolve();
    if (!("IntersectionObserver" in window)) return drawDiagrams(nodes, false);
    return new Promise(function (resolve) {
      var pending = nodes.length;
      var observer = new IntersectionObserver(
        function (entries) {
          var near = entries
            .filter(function (entry) {
              return entry.isIntersecting;
            })
            .map(function (entry) {
              observer.unobserve(entry.target);
              return entry.target;
            });
          if (!near.length) return;
          drawDiagrams(near, false).then(function () {
            pending -= near.length;
            if (pending <= 0) resolve();
          });
        },
        { rootMargin: DIAGRAM_MARGIN }
      );
      nodes.forEach(function (node) {
        observer.observe(node);
      });
    });
  }

  function drawDiagrams(nodes, redraw) {
    nodes = nodes.filter(function (node) {
      return redraw ? node.hasAttribute("data-source") : !node.hasAttribute("data-processed");
    });
    if (!nodes.length) return Promise.resolve();
    nodes.forEach(function (node) {
      // Keep the source: Mermaid replaces it with the SVG, and a scheme change redraws.
      if (!node.hasAttribute("data-source")) node.setAttribute("data-source", node.textContent);
      if (redraw) {
        node.removeAttribute("data-processed");
        node.textContent = node.getAttribute("data-source");
      }
    });
    return loadMermaid()
      .then(function (mermaid) {
        mermaid.initialize({
          startOnLoad: false,
          securityLevel: "strict",
          theme: darkScheme && darkScheme.matches ? "dark" : "default",
          fontFamily: getComputedStyle(document.body).fontFamily,
        });
        return mermaid.run({ nodes: nodes, suppressErrors: true }).then(function () {
          nodes.forEach(keepDiagramReadable);
        });
      })
      .catch(function (error) {
        console.warn("Mermaid could not draw a diagram:", error);
      });
  }

  // A diagram wider than its column would shrink until its labels are unreadable: below
  // MIN_DIAGRAM_SCALE of its natural size it keeps that size and scrolls sideways instead.
  var MIN_DIAGRAM_SCALE = 0.8;
  function keepDiagramReadable(node) {
    var svg = node.querySelector("svg");
    if (!svg || !svg.viewBox || !svg.viewBox.baseVal) return;
    var natural = svg.viewBox.baseVal.width;
    var available = node.clientWidth;
    var style = getComputedStyle(node);
    available -= parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
    var tooWide = natural > 0 && available / natural < MIN_DIAGRAM_SCALE;
    svg.style.minWidth = tooWide ? Math.round(natural * MIN_DIAGRAM_SCALE) + "px" : "";
    node.classList.toggle("is-overflowing", tooWide);
    if (tooWide) {
      node.setAttribute("tabindex", "0");
      node.setAttribute("role", "region");
      node.setAttribute("aria-label", "Wide diagram, scrolls sideways");
    }
  }

  function addCopyButtons(root) {
    var blocks = (root || document).querySelectorAll(".codeblock:not(.has-copy)");
    Array.prototype.forEach.call(blocks, function (block) {
      var code = block.querySelector("code");
      if (!code) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy-button";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy code to the clipboard");
      button.addEventListener("click", function () {
        copyText(code.textContent).then(
          function () {
            button.textContent = "Copied";
            button.classList.add("is-copied");
            window.setTimeout(function () {
              button.textContent = "Copy";
              button.classList.remove("is-copied");
            }, COPIED_LABEL_MS);
          },
          function () {
            button.textContent = "Select and copy";
          }
        );
      });
      block.appendChild(button);
      block.classList.add("has-copy");
    });
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    // Plain-HTTP deployments have no Clipboard API: fall back to a hidden textarea.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (error) {
        copied = false;
      }
      document.body.removeChild(area);
      (copied ? resolve : reject)();
    });
  }

  function followTableOfContents() {
    var links = document.querySelectorAll(".toc a[href^='#']");
    if (!links.length || !("IntersectionObserver" in window)) return;
    var byId = {};
    Array.prototype.forEach.call(links, function (link) {
      byId[decodeURIComponent(link.getAttribute("href").slice(1))] = link;
    });
    var observer = new IntersectionObserver(
      function (entries) {
        entries.forEach(function (entry) {
          if (!entry.isIntersecting) return;
          var link = byId[entry.target.id];
          if (!link) return;
          Array.prototype.forEach.call(links, function (other) {
            other.classList.toggle("is-active", other === link);
          });
        });
      },
      { rootMargin: "0px 0px -70% 0px" }
    );
    Object.keys(byId).forEach(function (id) {
      var heading = document.getElementById(id);
      if (heading) observer.observe(heading);
    });
  }

  // A region that scrolls sideways (a long code line, a wide table) must be reachable by
  // keyboard: it gets tabindex=0 and a name while it overflows.
  function focusableScrollers(root) {
    var nodes = (root || document).querySelectorAll(".codeblock pre, .prose table, pre.code-view");
    Array.prototype.forEach.call(nodes, function (node) {
      if (node.scrollWidth > node.clientWidth + 1 && !node.hasAttribute("tabindex")) {
        node.setAttribute("tabindex", "0");
        if (!node.hasAttribute("aria-label")) {
          node.setAttribute("role", "region");
          node.setAttribute("aria-label", node.tagName === "TABLE" ? "Wide table, scrolls sideways" : "Code, scrolls sideways");
        }
      }
    });
  }

  function renderContent(root) {
    addCopyButtons(root);
    focusableScrollers(root);
    return Promise.all([renderMath(root), drawDiagramsWhenNear(root)]);
  }

  window.Gradlab = window.Gradlab || {};
  window.Gradlab.renderContent = renderContent;
  window.Gradlab.renderMath = renderMath;
  window.renderMathInElement = function (root) {
    return renderMath(root);
  };

  function start() {
    renderContent(document);
    followTableOfContents();
    if (darkScheme && darkScheme.addEventListener) {
      darkScheme.addEventListener("change", function () {
        drawDiagrams(Array.prototype.slice.call(document.querySelectorAll("pre.mermaid")), true);
      });
    }
    var resizeTimer = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(resizeTimer);
      resizeTimer = window.setTimeout(function () {
        remarkAllOverflowing();
        focusableScrollers(document);
      }, 150);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
