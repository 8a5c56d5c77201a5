// Course pages: show every <time data-local-time> in the reader's own time zone (Intl), and send
// the browser's UTC offset with forms whose datetime-local inputs are read in that zone.
(function () {
  "use strict";
  var full = new Intl.DateTimeFormat(undefined, {
    weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
  var short = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  function localize(el, format) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) return;
    el.title = when.toISOString();
    el.textContent = format.format(when);
  }
  document.querySelectorAll("time[data-local-time]").forEach(function (el) { localize(el, full); });
  // Gradebook cells: the counting time, short.
  document.querySelectorAll("table.gradebook td time").forEach(function (el) { localize(el, short); });
  // A refused form comes back as it was sent, with the reason inside it: show that reason, which on
  // a long page (or a phone) is below the first screen.
  var refusal = document.querySelector("form .form-errors[role=alert]");
  if (refusal) refusal.scrollIntoView({ block: "center" });
  // A form filled with stored times (UTC): show them in the reader's zone, as they are read back.
  function pad(n) { return String(n).padStart(2, "0"); }
  document.querySelectorAll("form[data-local-times] input[type=datetime-local][data-utc]").forEach(function (input) {
    var at = new Date(input.getAttribute("data-utc"));
    if (isNaN(at.getTime())) return;
    input.value = at.getFullYear() + "-" + pad(at.getMonth() + 1) + "-" + pad(at.getDate()) + "T" + pad(at.getHours()) + ":" + pad(at.getMinutes());
  });
  // Invite links: a click in the field selects all of it; "Copy" puts it on the clipboard (or, where the
  // page is not a secure context, selects it for Ctrl-C).
  document.querySelectorAll("input.copy-field").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
  });
  document.querySelectorAll("button.link-copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) return;
      var done = function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 1500);
      };
      field.focus();
      field.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { /* selected: the user copies */ });
      } else {
        try { if (document.execCommand("copy")) done(); } catch (error) { /* selected: the user copies */ }
      }
    });
  });
  document.querySelectorAll("form[data-local-times]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var offset = form.querySelector("input[name=tz_offset]");
      var due = form.querySelector("input[name=due_at]");
      if (!offset) return;
      var at = due && due.value ? new Date(due.value) : new Date();
      offset.value = String(-at.getTimezoneOffset());
    });
  });
})();
