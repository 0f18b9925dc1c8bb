// Rules reordered by dragging (the Move up / Move down buttons do the same without a mouse):
// the dragged card goes before the card it is dropped on, and every card's hidden order
// field is numbered again, so the form posts the new order.
(function () {
  function renumber(list) {
    list.querySelectorAll(":scope > li [data-order]").forEach(function (field, index) { field.value = String(index); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("ol[data-sortable]").forEach(function (list) {
      var dragged = null;
      list.addEventListener("dragstart", function (event) {
        dragged = event.target.closest("li");
        if (!dragged) { return; }
        dragged.classList.add("dragging");
        event.dataTransfer.effectAllowed = "move";
        event.dataTransfer.setData("text/plain", "");
      });
      list.addEventListener("dragover", function (event) {
        var target = event.target.closest("li");
        if (!dragged || !target || target === dragged) { return; }
        event.preventDefault();
        list.querySelectorAll(".drop-target").forEach(function (li) { li.classList.remove("drop-target"); });
        target.classList.add("drop-target");
      });
      list.addEventListener("drop", function (event) {
        var target = event.target.closest("li");
        event.preventDefault();
        if (dragged && target && target !== dragged) { list.insertBefore(dragged, target); renumber(list); }
      });
      list.addEventListener("dragend", function () {
        list.querySelectorAll(".drop-target, .dragging").forEach(function (li) { li.classList.remove("drop-target", "dragging"); });
        dragged = null;
      });
    });
  });
})();
