// The dashboard's two dynamic parts (templates/dashboard/dashboard.html):
// - the submissions-per-day bar chart, drawn by Chart.js (static/vendor) from the
//   JSON that the page carries in <script id="daily-data" type="application/json">;
// - the "Queue and workers" panel, fetched from its data-live-url after the page has
//   loaded (a Celery ping takes a moment) and refreshed every REFRESH_MS.
// Without JavaScript the figures table and the live-status link still work.
(function () {
  "use strict";

  var REFRESH_MS = 15000;

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawChart() {
    var canvas = document.getElementById("daily-chart");
    var source = document.getElementById("daily-data");
    if (!canvas || !source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    var text = cssVar("--muted", "#5a6478");
    var grid = cssVar("--border", "#dbe1ec");
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Submissions", data: data.submissions, backgroundColor: cssVar("--accent", "#3b5bdb"), borderRadius: 3 },
          { label: "Accepted", data: data.accepted, backgroundColor: cssVar("--success", "#1f7a45"), borderRadius: 3 },
        ],
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { labels: { color: text, boxWidth: 12 } } },
        scales: {
          x: { ticks: { color: text, maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } },
          y: { beginAtZero: true, ticks: { color: text, precision: 0 }, grid: { color: grid } },
        },
      },
    });
  }

  function refreshLive(panel) {
    var url = panel.getAttribute("data-live-url");
    var body = panel.querySelector(".live-body");
    fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        body.innerHTML = html;
        panel.setAttribute("data-loaded", "true");
      })
      .catch(function (error) {
        body.innerHTML = '<p class="live-down" role="status"><strong>Unavailable:</strong> the live status could not be loaded.</p>';
        console.warn("live status", error);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawChart();
    var panel = document.getElementById("live");
    if (panel) {
      refreshLive(panel);
      window.setInterval(function () {
        if (!document.hidden) refreshLive(panel);
      }, REFRESH_MS);
    }
  });
})();
