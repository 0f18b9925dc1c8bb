// The studio's campaigns: a bar chart above each table marked data-chart="bar", drawn from
// the table itself (row headers as labels, the cells of column data-chart-column with their
// data-value). Without the vendored Chart.js the tables stand alone.
(function () {
  "use strict";

  function draw(table) {
    var column = parseInt(table.getAttribute("data-chart-column") || "1", 10);
    var labels = [];
    var values = [];
    Array.prototype.forEach.call(table.tBodies[0] ? table.tBodies[0].rows : [], function (row) {
      var cell = row.cells[column];
      if (!cell) { return; }
      labels.push(row.cells[0].textContent.trim());
      values.push(parseFloat(cell.getAttribute("data-value") || cell.textContent) || 0);
    });
    if (!labels.length) { return; }
    var box = document.createElement("div");
    box.className = "campaign-chart";
    box.setAttribute("aria-hidden", "true"); // the table below says the same
    var canvas = document.createElement("canvas");
    box.appendChild(canvas);
    var wrap = table.closest(".table-wrap") || table;
    wrap.parentNode.insertBefore(box, wrap);
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: table.getAttribute("data-chart-label") || "", data: values, backgroundColor: "#1f5f99" }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } }
    });
  }

  function start() {
    if (typeof window.Chart !== "function") { return; }
    document.querySelectorAll("table[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
