// Editor drafts (localStorage "gradlab:draft:<owner>:<slug>") belong to one account.
// On every page: forget drafts of anyone but the signed-in user (all of them when nobody
// is signed in), so the next person at a shared computer never sees them. On "Log out":
// forget every draft before the request leaves.
(function () {
  "use strict";
  var PREFIX = "gradlab:draft:";

  function forgetDrafts(keep) {
    try {
      var doomed = [];
      for (var i = 0; i < window.localStorage.length; i++) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf(PREFIX) === 0 && !(keep && key.indexOf(PREFIX + keep + ":") === 0)) {
          doomed.push(key);
        }
      }
      doomed.forEach(function (key) {
        window.localStorage.removeItem(key);
      });
    } catch (error) {
      /* storage disabled: there is nothing to forget */
    }
  }

  forgetDrafts(document.body.getAttribute("data-draft-owner") || "");
  document.addEventListener("submit", function (event) {
    var action = event.target && event.target.getAttribute && event.target.getAttribute("action");
    if (action && /\/accounts\/logout\/?$/.test(action)) forgetDrafts("");
  });
})();
