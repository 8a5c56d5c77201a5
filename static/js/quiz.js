// Quiz page enhancement: post each answer with fetch and swap the question's card
// in place. Without this script the same forms post normally and the page reloads.
(function () {
  "use strict";

  var FETCH_HEADER = "fetch"; // quizzes/views.py FETCH_HEADER_VALUE

  function csrfToken(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function renderMath(element) {
    // KaTeX auto-render is loaded by the base template when math is on the page.
    if (typeof window.renderMathInElement === "function") {
      window.renderMathInElement(element, {
        delimiters: [
          { left: "$$", right: "$$", display: true },
          { left: "\\[", right: "\\]", display: true },
          { left: "$", right: "$", display: false },
          { left: "\\(", right: "\\)", display: false }
        ],
        throwOnError: false
      });
    }
  }

  function showError(form, message) {
    var box = form.querySelector(".quiz-error");
    if (!box) {
      box = document.createElement("p");
      box.className = "quiz-error";
      box.setAttribute("role", "alert");
      form.appendChild(box);
    }
    box.textContent = message;
  }

  function replaceCard(card, html) {
    var holder = document.createElement("div");
    holder.innerHTML = html;
    var fresh = holder.firstElementChild;
    card.replaceWith(fresh);
    renderMath(fresh);
    return fresh;
  }

  function submit(event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("quiz-form")) {
      return;
    }
    event.preventDefault();
    var card = form.closest(".quiz-card");
    var button = form.querySelector(".quiz-submit");
    if (button) {
      button.disabled = true;
    }
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Requested-With": FETCH_HEADER, "X-CSRFToken": csrfToken(form), Accept: "application/json" }
    })
      .then(function (response) {
        return response.json().catch(function () {
          throw new Error("The server answered with status " + response.status + ".");
        });
      })
      .then(function (data) {
        if (data.card_html) {
          var fresh = replaceCard(card, data.card_html);
          var score = document.getElementById("quiz-score");
          if (score && data.score_html) {
            score.innerHTML = data.score_html;
          }
          var focus = data.ok ? fresh.querySelector(".quiz-feedback") : fresh.querySelector("input:not([type=hidden]), textarea");
          if (focus) {
            if (!data.ok) {
              focus.focus();
            } else {
              focus.setAttribute("tabindex", "-1");
              focus.focus({ preventScroll: true });
            }
          }
        } else {
          showError(form, data.error || "Something went wrong. Reload the page.");
          if (button) {
            button.disabled = false;
          }
        }
      })
      .catch(function (error) {
        // Network trouble: keep what was typed and say so.
        showError(form, "Could not reach the server (" + error.message + "). Your answer is still here; try again.");
        if (button) {
          button.disabled = false;
        }
      });
  }

  document.addEventListener("submit", submit);
})();
