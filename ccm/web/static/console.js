// The console's own script: every htmx request carries the page's CSRF token (Flask-WTF
// reads the X-CSRFToken header), and a live part that fails says so instead of going quiet.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
});
document.addEventListener("htmx:responseError", function (event) {
  var target = event.detail.target;
  if (target && target.hasAttribute("data-live")) { target.setAttribute("aria-busy", "false"); target.classList.add("stale"); }
});
document.addEventListener("htmx:afterSwap", function (event) {
  var target = event.detail.target;
  if (target && target.classList) { target.classList.remove("stale"); }
});
