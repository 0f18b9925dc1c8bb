// The studio's audiences: draws each table marked data-chart as a chart above it (the
// table stays: the chart is read from it). Needs the vendored Chart.js (global Chart);
// without it the tables are the charts. No inline scripts or styles (the console's CSP).
(function () {
  "use strict";
  var COLOURS = ["#1f4e79", "#c26d00", "#2e7d32", "#8e24aa", "#c62828"];

  function number(cell) {
    var raw = cell && cell.getAttribute("data-value");
    return raw === null || raw === undefined ? null : Number(raw);
  }

  function read(table) {
    var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);
    var labels = rows.map(function (row) { return row.cells[0].textContent.trim(); });
    var series = [];
    heads.forEach(function (head, index) {
      if (!head.hasAttribute("data-series")) return;
      series.push({
        label: head.textContent.trim(),
        data: rows.map(function (row) { return number(row.cells[index]); }),
        yAxisID: head.getAttribute("data-axis") === "right" ? "right" : "left"
      });
    });
    return { labels: labels, series: series };
  }

  function draw(table) {
    var kind = table.getAttribute("data-chart");
    var data = read(table);
    var box = document.createElement("div");
    box.className = "chart-box";
    var canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", (table.caption ? table.caption.textContent.trim() + " — " : "") + "chart of the table below");
    box.appendChild(canvas);
    var holder = table.closest(".table-wrap") || table;
    holder.parentNode.insertBefore(box, holder);
    var horizontal = kind === "pyramid";
    if (horizontal) data.series = data.series.slice(0, 1);  // the pyramid: customers per tier, VIP on top
    var twoAxes = data.series.some(function (s) { return s.yAxisID === "right"; });
    var scales = {};
    data.series.forEach(function (s, i) {
      s.backgroundColor = COLOURS[i % COLOURS.length];
      s.borderColor = COLOURS[i % COLOURS.length];
      if (!twoAxes) delete s.yAxisID;
    });
    if (twoAxes) {
      scales.left = { type: "linear", position: "left", beginAtZero: true };
      scales.right = { type: "linear", position: "right", beginAtZero: true, grid: { drawOnChartArea: false } };
    } else {
      scales[horizontal ? "x" : "y"] = { beginAtZero: true };
    }
    new window.Chart(canvas, {
      type: kind === "line" ? "line" : "bar",
      data: { labels: data.labels, datasets: data.series },
      options: {
        indexAxis: horizontal ? "y" : "x",
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: scales,
        plugins: { legend: { display: data.series.length > 1 } }
      }
    });
    table.setAttribute("data-drawn", "true");
  }

  function start() {
    if (!window.Chart) return;  // not vendored yet: the tables stand alone
    Array.prototype.forEach.call(document.querySelectorAll("table[data-chart]"), function (table) {
      try { draw(table); } catch (error) { table.setAttribute("data-drawn", "failed"); }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
