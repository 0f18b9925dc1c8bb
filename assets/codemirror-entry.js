// Entry of ccm/web/static/vendor/codemirror.js, bundled by scripts/build-assets.sh
// with esbuild into one minified IIFE that defines window.CCMEditor:
//
//   const ed = CCMEditor.create(textarea, {language, onChange, readOnly, nonce});
//   ed.getValue(); ed.setValue(text); ed.focus(); ed.destroy();
//   ed.setDiagnostics([{line, column, message, severity}]);
//   ed.setLanguage(language);
//
// - language: "html" (Jinja HTML templates: HTML plus a {{ }} / {% %} / {# #}
//   overlay), "css", "text" (SMS and text parts) or "typst" (our own small
//   highlighter in typst-mode.js, as no maintained CodeMirror 6 package
//   exists); anything else is plain text.
// - setLanguage: switches the highlighting to another language (same names as
//   for create), keeping the text, the selection, the undo history and the
//   diagnostics; for a page where the author picks the kind after typing.
// - The textarea is hidden and kept in sync with the editor, so form posts
//   still send its value. onChange(text) is called after each edit made in the
//   editor (not after setValue); debouncing it is the caller's job.
// - readOnly: the text can be selected and copied but not changed.
// - nonce: the page's CSP nonce; CodeMirror injects its styles in a <style>
//   element, which a CSP "style-src 'self'" blocks unless it carries a nonce.
// - setDiagnostics: 1-based line and column; severity "error" (default),
//   "warning", "info" or "hint"; shown as underlines plus gutter markers.
//   An empty list clears them.
// - Tab is not bound, so Tab and Shift-Tab move focus as anywhere else on the
//   page (a keyboard user is never trapped in the editor).
import { basicSetup } from "codemirror";
import { EditorView, Decoration, MatchDecorator, ViewPlugin } from "@codemirror/view";
import { EditorState, Annotation, Compartment } from "@codemirror/state";
import { setDiagnostics, lintGutter } from "@codemirror/lint";
import { html } from "@codemirror/lang-html";
import { css } from "@codemirror/lang-css";
import { typst } from "./typst-mode.js";

const programmatic = Annotation.define();

// Jinja delimiters, matched within one line ({# ... #} first so a comment
// holding "{{" is marked as a comment).
const jinjaMatcher = new MatchDecorator({
  regexp: /\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}/g,
  decoration: (match) =>
    match[0].startsWith("{#") ? jinjaCommentMark : jinjaMark,
});
const jinjaMark = Decoration.mark({ class: "cm-jinja" });
const jinjaCommentMark = Decoration.mark({ class: "cm-jinja-comment" });

const jinjaOverlay = [
  ViewPlugin.fromClass(
    class {
      constructor(view) {
        this.decorations = jinjaMatcher.createDeco(view);
      }
      update(update) {
        this.decorations = jinjaMatcher.updateDeco(update, this.decorations);
      }
    },
    { decorations: (plugin) => plugin.decorations },
  ),
  EditorView.baseTheme({
    ".cm-jinja": { color: "#7a3e9d", backgroundColor: "#f3ecf8" },
    ".cm-jinja-comment": { color: "#6a737d", fontStyle: "italic" },
    "&dark .cm-jinja": { color: "#d2a8ff", backgroundColor: "#2d2238" },
  }),
];

function languageExtensions(language) {
  switch (language) {
    case "html":
      return [html(), jinjaOverlay];
    case "css":
      return [css()];
    case "typst":
      return typst();
    default: // "text" and anything unknown: plain, wrapped lines
      return [EditorView.lineWrapping];
  }
}

function labelOf(textarea) {
  const own = textarea.getAttribute("aria-label");
  if (own) return own;
  const labels = textarea.labels;
  if (labels && labels.length) return labels[0].textContent.trim();
  return "";
}

function toDiagnostic(doc, d) {
  const lineNo = Math.min(Math.max(1, Math.floor(Number(d.line) || 1)), doc.lines);
  const line = doc.line(lineNo);
  const column = Math.max(1, Math.floor(Number(d.column) || 1));
  const from = Math.min(line.from + column - 1, line.to);
  // Underline the word at the position, else one character, within the line.
  let to = from;
  const rest = line.text.slice(from - line.from);
  const word = /^[\w-]+/.exec(rest);
  if (word) to = from + word[0].length;
  else if (rest.length) to = from + 1;
  const severity = ["error", "warning", "info", "hint"].includes(d.severity)
    ? d.severity
    : "error";
  return { from, to, severity, message: String(d.message ?? "") };
}

function create(textarea, options = {}) {
  const { language = "text", onChange = null, readOnly = false, nonce = "" } = options;
  const label = labelOf(textarea);
  const languageSlot = new Compartment();
  const extensions = [
    basicSetup,
    lintGutter(),
    languageSlot.of(languageExtensions(language)),
    EditorState.readOnly.of(Boolean(readOnly)),
    EditorView.contentAttributes.of(
      Object.assign(
        { "aria-multiline": "true" },
        label ? { "aria-label": label } : {},
        readOnly ? { "aria-readonly": "true" } : {},
      ),
    ),
    EditorView.updateListener.of((update) => {
      if (!update.docChanged) return;
      const text = update.state.doc.toString();
      textarea.value = text;
      const fromCaller = update.transactions.some((tr) => tr.annotation(programmatic));
      if (onChange && !fromCaller) onChange(text);
    }),
  ];
  if (nonce) extensions.push(EditorView.cspNonce.of(nonce));

  const view = new EditorView({
    state: EditorState.create({ doc: textarea.value, extensions }),
  });
  textarea.parentNode.insertBefore(view.dom, textarea.nextSibling);
  textarea.hidden = true;

  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue(text) {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: String(text ?? "") },
        annotations: programmatic.of(true),
      });
    },
    setDiagnostics(list) {
      const doc = view.state.doc;
      view.dispatch(setDiagnostics(view.state, (list || []).map((d) => toDiagnostic(doc, d))));
    },
    setLanguage(name) {
      view.dispatch({ effects: languageSlot.reconfigure(languageExtensions(name)) });
    },
    focus: () => view.focus(),
    destroy() {
      textarea.value = view.state.doc.toString();
      view.destroy();
      textarea.hidden = false;
    },
  };
}

window.CCMEditor = Object.freeze({ create });
