// The submission page: HTMX (static/vendor/htmx) re-fetches #submission-live while
// grading; after each swap this script renders math in the new HTML and draws the
// training-loss chart (Chart.js, static/vendor/chart.js) from the JSON data block
// #loss-chart-data: the learner's loss per step against the PyTorch reference's.
(function () {
  "use strict";

  var chart = null;

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function drawChart() {
    var canvas = document.getElementById("loss-chart");
    var source = document.getElementById("loss-chart-data");
    if (!canvas || !source || !window.Chart) return;
    if (canvas.getAttribute("data-drawn") === "true") return;
    var data;
    try {
      data = JSON.parse(source.textContent);
    } catch (error) {
      return;
    }
    var values = data.learner.concat(data.reference).filter(function (value) {
      return typeof value === "number" && isFinite(value);
    });
    var positive = values.length > 0 && values.every(function (value) { return value > 0; });
    var spread = positive ? Math.max.apply(null, values) / Math.min.apply(null, values) : 0;
    if (chart) chart.destroy();
    chart = new window.Chart(canvas, {
      type: "line",
      data: {
        labels: data.steps,
        datasets: [
          {
            // Wide and pale underneath: where the two curves agree, both stay visible.
            label: "PyTorch autograd",
            data: data.reference,
            borderColor: "rgba(31, 122, 69, 0.35)",
            borderWidth: 7,
            pointRadius: 0,
          },
          {
            label: "Your gradients",
            data: data.learner,
            borderColor: cssVar("--accent", "#3b5bdb"),
            borderWidth: 2,
            pointRadius: 0,
          },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "step" } },
          y: spread > 50
            ? { type: "logarithmic", title: { display: true, text: "loss" }, ticks: { callback: powerOfTenTick } }
            : { type: "linear", title: { display: true, text: "loss" } },
        },
      },
    });
    canvas.setAttribute("data-drawn", "true");
  }

  // A loss that diverges spans tens of decades: label only powers of ten, at most about eight of them
  // (every second, fifth... decade), as 0.01, 1, 100 near 1 and as 1e-5, 1e21 beyond.
  function powerOfTenTick(value) {
    var exponent = Math.log10(value);
    var rounded = Math.round(exponent);
    if (Math.abs(exponent - rounded) > 1e-9) return "";
    var decades = Math.log10(this.max) - Math.log10(this.min);
    var every = Math.max(1, Math.ceil(decades / 8));
    if (rounded % every !== 0) return "";
    return Math.abs(rounded) <= 3 ? String(Number(Math.pow(10, rounded).toPrecision(1))) : "1e" + rounded;
  }

  function refresh(root) {
    if (window.Gradlab && window.Gradlab.renderContent) window.Gradlab.renderContent(root || document);
    drawChart();
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    refresh(event.target);
  });
  // A swap that replaces the polled element itself (outerHTML) reports the old node as target.
  document.addEventListener("htmx:afterSettle", function () {
    drawChart();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { refresh(document); });
  } else {
    refresh(document);
  }
})();
