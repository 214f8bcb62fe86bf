// The IB dashboard: copy buttons for referral links, and the volume and commission charts (Chart.js, vendored).
(function () {
  "use strict";

  function copy(button) {
    var input = document.getElementById(button.getAttribute("data-copy-target"));
    if (!input) { return; }
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      button.classList.add("copied");
      window.setTimeout(function () { button.textContent = label; button.classList.remove("copied"); }, 1600);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { input.select(); });
    } else {
      input.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected for Ctrl+C */ }
    }
  }

  document.querySelectorAll(".button-copy").forEach(function (button) {
    button.addEventListener("click", function () { copy(button); });
  });

  var source = document.getElementById("ib-series");
  if (!source || typeof window.Chart === "undefined") { return; }
  var series = JSON.parse(source.textContent);
  var labels = series.labels.map(function (day) {
    var parts = day.split("-");
    return parts[2] + "/" + parts[1];
  });
  var palette = ["#14b8a6", "#0f3d5e", "#f59e0b", "#6366f1"];
  var common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: { legend: { display: false } },
    scales: {
      x: { grid: { display: false }, ticks: { maxTicksLimit: 10, color: "#5b6b7f" } },
      y: { beginAtZero: true, grid: { color: "#e2e8f0" }, ticks: { color: "#5b6b7f" } }
    }
  };

  new window.Chart(document.getElementById("chart-volume"), {
    type: "bar",
    data: {
      labels: labels,
      datasets: [{ label: "Lots", data: series.lots.map(Number), backgroundColor: "#0f3d5e", borderRadius: 3 }]
    },
    options: common
  });

  var currencies = Object.keys(series.commission);
  var datasets = currencies.map(function (currency, i) {
    return {
      label: currency,
      data: series.commission[currency].map(Number),
      borderColor: palette[i % palette.length],
      backgroundColor: "rgba(20, 184, 166, 0.15)",
      fill: i === 0,
      tension: 0.25,
      pointRadius: 2
    };
  });
  var options = JSON.parse(JSON.stringify(common));
  options.plugins.legend.display = currencies.length > 1;
  new window.Chart(document.getElementById("chart-commission"), {
    type: "line",
    data: { labels: labels, datasets: datasets.length ? datasets : [{ label: "USD", data: labels.map(function () { return 0; }) }] },
    options: options
  });
})();
