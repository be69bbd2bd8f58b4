/* Every chart of the back office (Chart.js, vendored): run pages, compliance, follow-up and
   dashboards. Each <canvas data-chart="x"> draws the JSON of
   <script type="application/json" id="chart-data-x">:
   {type, labels, datasets: [{label, data, type?, colour?}], percent?, max?, xPercent?,
    horizontal?, perBar?, yTitle?}.
   A file of its own: the Content-Security-Policy runs no inline script. */
(function () {
  "use strict";
  var colours = ["rgba(0, 123, 255, 0.6)", "rgba(40, 167, 69, 0.6)", "rgba(255, 193, 7, 0.7)",
                 "rgba(220, 53, 69, 0.6)", "rgba(108, 117, 125, 0.6)"];
  function draw() {
    if (typeof Chart === "undefined") { return; }
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var source = document.getElementById("chart-data-" + canvas.dataset.chart);
      if (!source) { return; }
      var spec = JSON.parse(source.textContent);
      var sets = spec.datasets.map(function (d, i) {
        var c = d.colour || colours[i % colours.length];
        var fill = (spec.perBar && d.type !== "line")
          ? spec.labels.map(function (_l, j) { return colours[j % colours.length]; }) : c;
        return Object.assign({backgroundColor: fill, borderColor: d.type === "line" ? c : c.replace(/, 0\.\d+\)/, ")"),
                              borderWidth: d.type === "line" ? 2 : 1}, d);
      });
      var y = {beginAtZero: true};
      if (spec.percent) { y.ticks = {callback: function (v) { return v + "%"; }}; }
      else { y.ticks = {precision: 0}; }
      if (spec.max) { y.suggestedMax = spec.max; }
      if (spec.yTitle) { y.title = {display: true, text: spec.yTitle}; }
      var scales = spec.horizontal ? {x: y} : {y: y};
      if (spec.xPercent) {  // a scatter of percentages (x) against amounts (y)
        y.ticks = {};
        scales.x = {ticks: {callback: function (v) { return v + "%"; }}};
      }
      new Chart(canvas, {
        type: spec.type || "bar",
        data: {labels: spec.labels, datasets: sets},
        options: {responsive: true, maintainAspectRatio: false, animation: false,
                  indexAxis: spec.horizontal ? "y" : "x",
                  plugins: {legend: {display: sets.length > 1}},
                  scales: scales}
      });
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
