/* Draws the charts described in the page's #analytics-charts JSON with the vendored Chart.js (no inline script). */
(function () {
  "use strict";
  var source = document.getElementById("analytics-charts");
  if (!source || typeof Chart === "undefined") { return; }
  var specs = JSON.parse(source.textContent) || [];
  var money = function (currency) {
    var format = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
    return function (value) { return format.format(value) + (currency ? " " + currency : ""); };
  };
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#5b6b7f";
  Chart.defaults.plugins.legend.labels.boxWidth = 12;

  specs.forEach(function (spec) {
    var canvas = document.getElementById(spec.id);
    if (!canvas) { return; }
    var opts = spec.options || {};
    var options = { responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom" } } };
    if (spec.type !== "doughnut") {
      var valueAxis = { stacked: !!opts.stacked, grid: { color: "#eef2f7" }, ticks: {} };
      if (opts.money) { valueAxis.ticks.callback = money(opts.money); }
      var categoryAxis = { stacked: !!opts.stacked, grid: { display: false } };
      options.scales = opts.horizontal ? { x: valueAxis, y: categoryAxis } : { x: categoryAxis, y: valueAxis };
      if (opts.horizontal) { options.indexAxis = "y"; options.plugins.legend.display = false; }
      if (opts.dual) { options.scales.y1 = { position: "right", grid: { display: false }, beginAtZero: true }; }
    } else {
      options.plugins.legend.position = "right";
      options.cutout = "62%";
    }
    spec.datasets.forEach(function (dataset) {
      if (dataset.type === "line" || spec.type === "line") {
        dataset.tension = 0.25; dataset.pointRadius = 2; dataset.borderWidth = 2; dataset.fill = false;
        dataset.order = 0;
      } else if (spec.type === "bar") {
        dataset.borderRadius = 3; dataset.order = 1; dataset.maxBarThickness = 38;
      }
    });
    if (!spec.labels.length) {
      canvas.parentNode.classList.add("chart-empty");
      canvas.replaceWith(Object.assign(document.createElement("p"), { className: "muted empty", textContent: "No data in this range." }));
      return;
    }
    new Chart(canvas, { type: spec.type, data: { labels: spec.labels, datasets: spec.datasets }, options: options });
  });

  var refreshing = document.querySelector("[data-refresh-seconds]");
  if (refreshing) {
    var seconds = parseInt(refreshing.getAttribute("data-refresh-seconds"), 10);
    if (seconds > 0) { window.setTimeout(function () { window.location.reload(); }, seconds * 1000); }
  }
})();
