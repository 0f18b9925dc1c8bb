// The template editor: the textarea becomes a CodeMirror editor when the vendored bundle is
// there (window.CCMEditor); as the author types, the source is checked (the engine's
// save-time checks, shown as diagnostics and as a list linked to their line) and the
// preview is rendered again, each debounced. The same editor serves a new template's first
// draft (its name and kind come from the form; the check says how to highlight it). Without
// this script the page is a plain form.
(function () {
  "use strict";
  var CHECK_DELAY = 500, PREVIEW_DELAY = 700;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function offsetOf(text, line, column) {
    var lines = text.split("\n"), offset = 0;
    for (var i = 0; i < Math.min(line - 1, lines.length); i++) { offset += lines[i].length + 1; }
    return Math.min(offset + Math.max(column - 1, 0), text.length);
  }

  function start(form) {
    var textarea = form.querySelector("textarea[name=source]");
    var list = document.getElementById("problems"), none = document.getElementById("problems-none");
    var preview = document.getElementById("preview"), section = preview.closest("section");
    var editor = null, checkTimer = null, previewTimer = null, checkSeq = 0, previewSeq = 0;

    function value() { return editor ? editor.getValue() : textarea.value; }

    function goTo(line, column) {
      if (editor && editor.view) {
        var where = offsetOf(editor.getValue(), line, column);
        editor.view.dispatch({selection: {anchor: where}, scrollIntoView: true});
        editor.focus();
        return;
      }
      if (editor) { editor.focus(); return; }
      var at = offsetOf(textarea.value, line, column);
      textarea.focus();
      textarea.setSelectionRange(at, at);
    }

    list.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-line]");
      if (!link) { return; }
      event.preventDefault();
      goTo(Number(link.dataset.line), Number(link.dataset.column));
    });

    function show(problems) {
      list.textContent = "";
      problems.forEach(function (problem) {
        var item = document.createElement("li"), link = document.createElement("a"), badge = document.createElement("span");
        item.className = problem.severity;
        link.href = "#source";
        link.dataset.line = problem.line;
        link.dataset.column = problem.column;
        link.textContent = (list.dataset.at || "line {line}, column {column}").replace("{line}", problem.line).replace("{column}", problem.column);
        badge.className = "state";
        badge.textContent = problem.severity;
        item.append(link, " ", badge, " ", problem.message);
        list.append(item);
      });
      none.hidden = problems.length > 0;
      if (editor && editor.setDiagnostics) {
        editor.setDiagnostics(problems.map(function (p) {
          return {line: p.line, column: p.column, message: p.message, severity: p.severity};
        }));
      }
    }

    function post(url, extra) {
      var body = new FormData(form);
      body.set("source", value());
      Object.keys(extra || {}).forEach(function (key) { body.set(key, extra[key]); });
      return fetch(url, {method: "POST", body: body, credentials: "same-origin",
                         headers: {"X-CSRFToken": csrf(), "X-Fragment": "1"}});
    }

    function check() {
      var mine = ++checkSeq;
      post(form.dataset.checkUrl).then(function (answer) {
        var language = answer.headers.get("X-Editor-Language");
        if (answer.ok && language && editor && editor.setLanguage && language !== textarea.dataset.language) {
          textarea.dataset.language = language;  // a new template's name or kind changed its highlighting
          editor.setLanguage(language);
        }
        return answer.ok ? answer.json() : null;
      }).then(function (problems) {
        if (problems && mine === checkSeq) { show(problems); }
      }).catch(function () {});
    }

    function render() {
      var mine = ++previewSeq;
      section.setAttribute("aria-busy", "true");
      post(form.dataset.previewUrl).then(function (answer) {
        var plain = (answer.headers.get("Content-Type") || "").indexOf("text/plain") === 0;
        return answer.text().then(function (html) { return {ok: answer.ok, html: html, plain: plain}; });
      }).then(function (result) {
        if (mine !== previewSeq) { return; }
        if (result.plain) {  // what the form lacks (a new template's name or kind), in words
          var note = document.createElement("p");
          note.className = "muted";
          note.textContent = result.html;
          preview.replaceChildren(note);
          section.setAttribute("aria-busy", "false");
          return;
        }
        var last = preview.querySelector(".studio-rendered");
        if (!result.ok && last) {
          // The source does not render (yet): say why above the last preview that did, dimmed.
          var holder = document.createElement("div");
          holder.innerHTML = result.html;
          var reason = holder.querySelector(".problem");
          preview.querySelectorAll(":scope > .problem").forEach(function (old) { old.remove(); });
          if (reason) { preview.prepend(reason); }
          last.classList.add("studio-stale");
        } else {
          preview.innerHTML = result.html;
        }
        section.setAttribute("aria-busy", "false");
      }).catch(function () { section.setAttribute("aria-busy", "false"); });
    }

    function changed() {
      clearTimeout(checkTimer);
      clearTimeout(previewTimer);
      checkTimer = setTimeout(check, CHECK_DELAY);
      previewTimer = setTimeout(render, PREVIEW_DELAY);
    }

    if (window.CCMEditor && window.CCMEditor.create) {
      try {
        editor = window.CCMEditor.create(textarea, {language: textarea.dataset.language || "html", onChange: changed,
                                                    nonce: textarea.dataset.nonce});
      } catch (error) { editor = null; }
    }
    if (!editor) { textarea.addEventListener("input", changed); }
    form.addEventListener("submit", function () { textarea.value = value(); });
    form.querySelectorAll("input[name=customer], input[name=cycle], input[name=variants]").forEach(function (input) {
      input.addEventListener("change", function () { clearTimeout(previewTimer); previewTimer = setTimeout(render, 50); });
    });
    form.querySelectorAll("[data-rerender]").forEach(function (input) {  // a new template's name and kind
      input.addEventListener("change", changed);
    });
    var customer = form.querySelector("input[name=customer]"), choices = document.getElementById("customer-list"), searchTimer = null;
    if (customer && choices && customer.dataset.searchUrl) {
      customer.addEventListener("input", function () {
        clearTimeout(searchTimer);
        searchTimer = setTimeout(function () {
          var url = customer.dataset.searchUrl + "?q=" + encodeURIComponent(customer.value);
          fetch(url, {credentials: "same-origin"}).then(function (answer) { return answer.ok ? answer.text() : ""; })
            .then(function (html) { choices.innerHTML = html; }).catch(function () {});
        }, 300);
      });
    }
    form.dataset.live = "ready";
    check();
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("studio-form");
    if (form) { start(form); }
  });
})();
