// The exercise change page in the admin (grader/admin.py): while the validation of the saved
// exercise is pending, reload its outcome block from the fragment URL every few seconds,
// so the author sees the result without reloading the page. Stops once it is settled.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var MAX_POLLS = 300; // ten minutes: a validation longer than that is reported as it stands

  function poll(block, remaining) {
    var url = block.getAttribute("data-validation-url");
    if (!url || block.getAttribute("data-validation-status") !== "pending" || remaining <= 0) {
      return;
    }
    window.setTimeout(function () {
      fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          var status = response.headers.get("X-Validation-Status") || "";
          return response.text().then(function (html) {
            block.innerHTML = html;
            block.setAttribute("data-validation-status", status);
          });
        })
        .catch(function () {
          // A network blip: keep the last outcome shown and try again.
        })
        .then(function () {
          poll(block, remaining - 1);
        });
    }, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".validation-outcome[data-validation-url]").forEach(function (block) {
      poll(block, MAX_POLLS);
    });
  });
})();
