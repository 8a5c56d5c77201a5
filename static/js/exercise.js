// The exercise page (the workspace): turns the code textarea into a CodeMirror 6 editor
// (static/vendor/codemirror.bundle.js, window.GradlabEditor) whose draft is kept in
// localStorage per user and exercise (static/js/drafts.js forgets other users' drafts),
// adds "Reset to starter code", Ctrl/Cmd+Enter to submit (the code is left untouched),
// and answers in the left pane instead of leaving the page:
// - Submit posts the form with fetch (header X-Requested-With: fetch); the reply holds the
//   submission's live block, which HTMX then polls until the verdict (grader/views.py);
// - "Run on an example" posts the code to data-run-url and polls the run's block the same way.
// The left pane's tabs (Statement / Result / Example run) switch between them.
// Without JavaScript the textarea and the plain form POST do the same job.
(function () {
  "use strict";

  var FETCH_HEADER = "fetch"; // grader/views.py PANEL_HEADER_VALUE

  function selectTab(id) {
    var tabs = document.querySelectorAll(".pane-tabs [role=tab]");
    Array.prototype.forEach.call(tabs, function (tab) {
      var selected = tab.id === id;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
      var pane = document.getElementById(tab.getAttribute("aria-controls"));
      if (pane) pane.hidden = !selected;
    });
  }

  // Show a pane's answer: select its tab and, when the tabs are off screen (on a phone they sit
  // above the editor, so a learner who submits from below it would see nothing happen), bring
  // them into view.
  function showPane(tabId) {
    selectTab(tabId);
    var list = document.querySelector(".pane-tabs");
    if (!list) return;
    var box = list.getBoundingClientRect();
    if (box.top >= 0 && box.bottom <= window.innerHeight) return;
    var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    list.scrollIntoView({ block: "start", behavior: still ? "auto" : "smooth" });
  }

  function initTabs() {
    var list = document.querySelector(".pane-tabs");
    if (!list) return;
    list.hidden = false;
    var tabs = Array.prototype.slice.call(list.querySelectorAll("[role=tab]"));
    tabs.forEach(function (tab, index) {
      tab.addEventListener("click", function () {
        selectTab(tab.id);
      });
      tab.addEventListener("keydown", function (event) {
        var step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
        if (!step) return;
        event.preventDefault();
        var next = tabs[(index + step + tabs.length) % tabs.length];
        selectTab(next.id);
        next.focus();
      });
    });
  }

  function showError(message) {
    var box = document.getElementById("workspace-error");
    if (!box) return;
    box.textContent = message || "";
    box.hidden = !message;
  }

  function insert(slotId, html) {
    var slot = document.getElementById(slotId);
    if (!slot) return null;
    slot.innerHTML = html;
    if (window.htmx) window.htmx.process(slot);
    if (window.Gradlab && window.Gradlab.renderContent) window.Gradlab.renderContent(slot);
    return slot;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Requested-With": FETCH_HEADER },
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return { ok: false, error: "The server answered with status " + response.status + ". Your code is kept." };
        })
        .then(function (data) {
          return data;
        });
    });
  }

  function init() {
    initTabs();
    var textarea = document.querySelector("textarea[data-editor]");
    var form = document.getElementById("exercise-form");
    if (!textarea || !form || !window.GradlabEditor) return;
    var submit = document.getElementById("submit-button");
    var run = document.getElementById("run-button");
    var busy = false;

    // "<owner>:<slug>": a draft is only ever shown to the account that typed it; none when logged out.
    var owner = document.body.getAttribute("data-draft-owner") || "";
    var slug = textarea.getAttribute("data-draft-key") || "";
    var editor = window.GradlabEditor.create(textarea, {
      draftKey: owner && slug ? owner + ":" + slug : "",
      minLines: 18,
      onSubmit: function () {
        if (submit && !submit.disabled) form.requestSubmit(submit);
      },
    });
    window.gradlabExerciseEditor = editor; // tests and the console reach the editor here
    // The editor's scroller is a scrolling region: keyboard users reach it (axe: scrollable-region-focusable).
    editor.view.scrollDOM.setAttribute("tabindex", "0");
    editor.view.scrollDOM.setAttribute("aria-label", "Code editor scroll area");
    document.querySelectorAll(".editor-hint").forEach(function (hint) {
      hint.hidden = false;
    });

    var starter = document.getElementById("starter-code");
    var reset = document.getElementById("reset-button");
    if (starter && reset) {
      reset.hidden = false;
      reset.addEventListener("click", function () {
        if (window.confirm("Replace your code with the starter code?")) {
          editor.setValue(starter.content.textContent);
          editor.view.focus();
        }
      });
    }

    function setBusy(button, label) {
      busy = Boolean(label);
      [submit, run].forEach(function (other) {
        if (other) other.disabled = busy;
      });
      if (button) {
        if (label) {
          button.setAttribute("data-label", button.textContent);
          button.textContent = label;
        } else if (button.hasAttribute("data-label")) {
          button.textContent = button.getAttribute("data-label");
        }
      }
    }

    var panelMode = Boolean(window.fetch && window.FormData && document.getElementById("workspace-result"));
    var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");

    // The code exactly as in the editor: a url-encoded body keeps its line endings (a form's
    // textarea would be sent with CRLF). An uploaded file goes as multipart, byte for byte.
    function codeBody(code) {
      var body = new URLSearchParams();
      body.append("csrfmiddlewaretoken", csrf ? csrf.value : "");
      body.append("code", code);
      return body;
    }

    function submissionBody() {
      var file = form.querySelector("input[type=file]");
      if (file && file.files && file.files.length) return new FormData(form);
      return codeBody(editor.getValue());
    }
    form.addEventListener("submit", function (event) {
      textarea.value = editor.getValue();
      if (!panelMode) {
        if (submit) {
          // Guard against a double click sending two submissions; the page is about to change.
          window.setTimeout(function () {
            submit.disabled = true;
            submit.textContent = "Submitting…";
          }, 0);
        }
        return;
      }
      event.preventDefault();
      if (busy) return;
      showError("");
      setBusy(submit, "Submitting…");
      post(form.action, submissionBody())
        .then(function (data) {
          if (!data.ok) {
            showError(data.error || "The submission was not accepted. Your code is kept.");
            return;
          }
          insert("workspace-result", data.panel_html);
          var history = document.getElementById("exercise-history");
          if (history && data.history_html) {
            insert("history-slot", data.history_html);
            history.hidden = false;
          }
          showPane("tab-result");
        })
        .catch(function () {
          showError("The server could not be reached. Your code is kept; try again.");
        })
        .then(function () {
          setBusy(submit, null);
        });
    });

    if (run && form.getAttribute("data-run-url") && panelMode) {
      run.hidden = false;
      run.addEventListener("click", function () {
        if (busy) return;
        showError("");
        setBusy(run, "Running…");
        post(form.getAttribute("data-run-url"), codeBody(editor.getValue()))
          .then(function (data) {
            if (!data.ok) {
              showError(data.error || "The example could not run. Your code is kept.");
              return;
            }
            insert("workspace-example", data.html);
            showPane("tab-example");
          })
          .catch(function () {
            showError("The server could not be reached. Your code is kept; try again.");
          })
          .then(function () {
            setBusy(run, null);
          });
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
