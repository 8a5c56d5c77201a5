// Brings Markdown rendered by gradlab/markdown.py to life, on every page that has some
// (lessons, quiz explanations, exercise statements). Loaded by templates/base.html.
//
// - `.math[data-display]` elements hold TeX as text: KaTeX renders them in place.
// - `pre.mermaid` holds a diagram's source: Mermaid (loaded only when a page has a
//   diagram, from the URL in this script tag's data-mermaid-src) draws it as an SVG,
//   in a theme matching the colour scheme, redrawn when the scheme changes.
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
  var darkScheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var COPIED_LABEL_MS = 1500;
  var mermaidLoading = null;

  function renderMath(root) {
    if (!window.katex) return;
    var nodes = (root || document).querySelectorAll(".math[data-display]:not(.is-rendered)");
    Array.prototype.forEach.call(nodes, function (node) {
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
  }

  function loadMermaid() {
    if (window.mermaid) return Promise.resolve(window.mermaid);
    if (!mermaidSrc) return Promise.reject(new Error("no data-mermaid-src on the lesson.js script tag"));
    if (!mermaidLoading) {
      mermaidLoading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = mermaidSrc;
        tag.onload = function () {
          resolve(window.mermaid);
        };
        tag.onerror = function () {
          reject(new Error("could not load " + mermaidSrc));
        };
        document.head.appendChild(tag);
      });
    }
    return mermaidLoading;
  }

  function drawDiagrams(root, redraw) {
    var selector = redraw ? "pre.mermaid" : "pre.mermaid:not([data-processed])";
    var nodes = Array.prototype.slice.call((root || document).querySelectorAll(selector));
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
        return mermaid.run({ nodes: nodes, suppressErrors: true });
      })
      .catch(function (error) {
        console.warn("Mermaid could not draw a diagram:", error);
      });
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

  function renderContent(root) {
    renderMath(root);
    addCopyButtons(root);
    return drawDiagrams(root, false);
  }

  window.Gradlab = window.Gradlab || {};
  window.Gradlab.renderContent = renderContent;
  window.Gradlab.renderMath = renderMath;
  window.renderMathInElement = function (root) {
    renderMath(root);
  };

  function start() {
    renderContent(document);
    followTableOfContents();
    if (darkScheme && darkScheme.addEventListener) {
      darkScheme.addEventListener("change", function () {
        drawDiagrams(document, true);
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
