// The exercise page: turns the code textarea into a CodeMirror 6 editor
// (static/vendor/codemirror.bundle.js, window.GradlabEditor) whose draft is kept in
// localStorage per exercise, adds "Reset to starter code" and Ctrl/Cmd+Enter to submit.
// Without JavaScript the textarea and the plain form POST do the same job.
(function () {
  "use strict";

  function init() {
    var textarea = document.querySelector("textarea[data-editor]");
    var form = document.getElementById("exercise-form");
    if (!textarea || !form || !window.GradlabEditor) return;

    var editor = window.GradlabEditor.create(textarea, {
      draftKey: textarea.getAttribute("data-draft-key") || "",
      minLines: 18,
    });
    window.gradlabExerciseEditor = editor; // tests and the console reach the editor here
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

    var submit = document.getElementById("submit-button");
    form.addEventListener("submit", function () {
      textarea.value = editor.getValue();
      if (submit) {
        // Guard against a double click sending two submissions; the page is about to change.
        window.setTimeout(function () {
          submit.disabled = true;
          submit.textContent = "Submitting…";
        }, 0);
      }
    });

    editor.view.dom.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && submit) {
        event.preventDefault();
        form.requestSubmit(submit);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
