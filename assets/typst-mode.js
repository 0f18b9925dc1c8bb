// A small Typst highlighter for CCMEditor (no maintained CodeMirror 6 Typst
// package exists): a StreamLanguage tokenizer, not a parser. It colours what
// an author needs to read a template at a glance and never throws; anything it
// does not understand is left as plain text.
//
// Typst has three modes, kept as a stack of frames in the state:
//   markup  the text itself; "#" starts code, "$" math, "[...]" nests markup
//           (a content block, closed by its "]");
//   code    after "#let", "#set", "#show", "#if"...: to the end of the line
//           (kind "line"); inside "{...}" or "(...)": to the closing bracket;
//           after "#name": the name and what follows it without a space
//           ("(args)", "[content]", ".field"; kind "expr");
//   math    between "$" and "$".
// Comments (nested "/* */"), strings and fenced raw blocks may span lines;
// strong "*" and emphasis "_" last until closed or until a blank line.
import { StreamLanguage, HighlightStyle, syntaxHighlighting, defaultHighlightStyle } from "@codemirror/language";
import { tags } from "@lezer/highlight";
import { EditorView } from "@codemirror/view";

const KEYWORDS = new Set([
  "let", "set", "show", "if", "else", "for", "in", "while", "break", "continue",
  "return", "import", "include", "not", "and", "or", "context", "as",
]);
const ATOMS = new Set(["none", "auto"]);
const BOOLS = new Set(["true", "false"]);
// After "#", these start a statement that runs to the end of the line.
const STATEMENTS = new Set([
  "let", "set", "show", "if", "for", "while", "import", "include", "return", "context",
]);

const IDENT = /^[\p{L}_][\p{L}\p{N}_-]*/u;
const NUMBER = /^(?:0x[\da-fA-F]+|0o[0-7]+|0b[01]+|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?(?:pt|mm|cm|in|em|deg|rad|fr|%)?)/;
const LABEL = /^<[\p{L}\p{N}_\-.:]+>/u;
const REFERENCE = /^@[\p{L}\p{N}_](?:[\p{L}\p{N}_\-.:]*[\p{L}\p{N}_])?/u; // "@intro." ends at "o"
const URL = /^https?:\/\/[^\s\]<>"]*/;
// Plain text: a word (so that a URL is only looked for at a word's start), or a
// run of what is neither a letter nor special.
const TEXT = /^[\p{L}\p{N}]+|^[^\\#*_`$<@\[\]\/\p{L}\p{N}]+/u;
const MAX_DEPTH = 64; // deeper nesting is treated as one level: states stay small

const wordBefore = (stream) =>
  stream.pos > 0 && /[\p{L}\p{N}]/u.test(stream.string.charAt(stream.pos - 1));

function push(state, frame) {
  if (state.stack.length < MAX_DEPTH) state.stack.push(frame);
}

function top(state) {
  return state.stack[state.stack.length - 1];
}

// A frame ends: the bottom one (the document's markup) never does.
function pop(state) {
  if (state.stack.length > 1) state.stack.pop();
}

// --- what spans lines: block comments, strings, raw blocks

function blockComment(stream, state) {
  while (!stream.eol()) {
    if (stream.match("/*")) state.comment++;
    else if (stream.match("*/")) {
      if (--state.comment === 0) break;
    } else stream.next();
  }
  return "comment";
}

function string(stream, state) {
  state.string = true;
  while (!stream.eol()) {
    const ch = stream.next();
    if (ch === "\\") stream.next();
    else if (ch === '"') {
      state.string = false;
      break;
    }
  }
  return "string";
}

// Raw text opened by `state.raw` backticks: through the same number of them.
function raw(stream, state) {
  const fence = "`".repeat(state.raw);
  const rest = stream.string.slice(stream.pos);
  const re = new RegExp(`(?<!\`)${fence}(?!\`)`);
  const m = re.exec(rest);
  if (m) {
    stream.pos += m.index + fence.length;
    state.raw = 0;
  } else stream.skipToEnd();
  return "monospace";
}

// --- shared by all modes

// A comment, or (not in markup, where a quote is text) a string.
function commentOrString(stream, state, strings = true) {
  if (stream.match("//")) {
    stream.skipToEnd();
    return "comment";
  }
  if (stream.match("/*")) {
    state.comment = 1;
    return blockComment(stream, state);
  }
  if (strings && stream.eat('"')) return string(stream, state);
  return undefined;
}

// "#" in markup or math: a keyword statement, a name, or a bracket.
function hash(stream, state) {
  const word = stream.match(/^#([\p{L}_][\p{L}\p{N}_-]*)/u, false);
  if (word) {
    const name = word[1];
    stream.pos += word[0].length;
    if (STATEMENTS.has(name)) {
      push(state, { mode: "code", kind: "line" });
      return "keyword";
    }
    if (ATOMS.has(name)) return "atom";
    if (BOOLS.has(name)) return "bool";
    push(state, { mode: "code", kind: "expr", started: true });
    return /^[(\[]/.test(stream.peek() || "") ? "variableName.function" : "variableName";
  }
  stream.next();
  if (/^[({\["]/.test(stream.peek() || "")) {
    push(state, { mode: "code", kind: "expr", started: false });
    return "meta";
  }
  return textStyle(state); // a lone "#"
}

// --- code

function code(stream, state, frame) {
  if (frame.kind === "expr" && frame.started) {
    // After a name or a bracket: only "(", "[" or ".field" continue it.
    const next = stream.peek();
    if (next !== "(" && next !== "[" && !stream.match(/^\.[\p{L}_]/u, false)) {
      pop(state);
      return undefined; // tokenized again in the frame below
    }
  }
  if (stream.eatSpace()) return null;
  const found = commentOrString(stream, state);
  if (found !== undefined) {
    if (frame.kind === "expr") frame.started = true;
    return found;
  }
  const ch = stream.peek();
  if (frame.kind === "expr") frame.started = true;
  if (ch === "(" || ch === "{") {
    stream.next();
    push(state, { mode: "code", kind: ch === "(" ? "paren" : "brace" });
    return ch === "(" ? "paren" : "brace";
  }
  if (ch === ")" || ch === "}") {
    stream.next();
    if (frame.kind === (ch === ")" ? "paren" : "brace")) pop(state);
    return ch === ")" ? "paren" : "brace";
  }
  if (ch === "[") {
    stream.next();
    push(state, { mode: "markup", depth: 0 });
    return "squareBracket";
  }
  if (ch === "$") {
    stream.next();
    push(state, { mode: "math" });
    return "string.special";
  }
  if (stream.match(/^\.(?=[\p{L}_])/u)) {
    stream.match(IDENT);
    return /^[(\[]/.test(stream.peek() || "") ? "variableName.function" : "propertyName";
  }
  if (stream.match(NUMBER)) return "number";
  const word = stream.match(IDENT);
  if (word) {
    const name = word[0];
    if (KEYWORDS.has(name)) return "keyword";
    if (ATOMS.has(name)) return "atom";
    if (BOOLS.has(name)) return "bool";
    return /^[(\[]/.test(stream.peek() || "") ? "variableName.function" : "variableName";
  }
  if (frame.kind === "line" && ch === ";") {
    stream.next();
    pop(state);
    return "punctuation";
  }
  if (stream.match(LABEL)) return "labelName";
  if (stream.match(/^(?:=>|==|!=|<=|>=|\+=|-=|\*=|\/=|\.\.|[-+*\/=<>!:,;.])/)) return "operator";
  stream.next();
  return null;
}

// --- markup

function textStyle(state) {
  const styles = [];
  if (state.heading) styles.push("heading");
  if (state.strong) styles.push("strong");
  if (state.emphasis) styles.push("emphasis");
  return styles.length ? styles.join(" ") : null;
}

function markup(stream, state, frame) {
  if (stream.sol() && stream.match(/^\s*=+(?=\s|$)/)) {
    state.heading = true;
    return "heading";
  }
  const found = commentOrString(stream, state, false);
  if (found !== undefined) return found;
  const ch = stream.peek();
  if (ch === "\\") {
    stream.next();
    if (!stream.match(/^u\{[\da-fA-F]*\}?/)) stream.next();
    return "escape";
  }
  if (ch === "#") return hash(stream, state);
  if (ch === "$") {
    stream.next();
    push(state, { mode: "math" });
    return "string.special";
  }
  if (ch === "`") {
    const ticks = stream.match(/^`+/)[0].length;
    if (ticks === 2) return "monospace"; // empty raw text
    state.raw = ticks;
    return raw(stream, state);
  }
  if (ch === "*" || ch === "_") {
    const flag = ch === "*" ? "strong" : "emphasis";
    // Inside a word (snake_case, 2*3) it opens nothing.
    if (!state[flag] && wordBefore(stream)) {
      stream.next();
      return textStyle(state);
    }
    stream.next();
    const opening = !state[flag];
    if (opening) state[flag] = true;
    const style = textStyle(state);
    if (!opening) state[flag] = false;
    return style;
  }
  if (ch === "[" && frame.depth !== undefined) {
    stream.next();
    frame.depth++;
    return textStyle(state);
  }
  if (ch === "]" && frame.depth !== undefined) {
    stream.next();
    if (frame.depth > 0) {
      frame.depth--;
      return textStyle(state);
    }
    pop(state);
    return "squareBracket";
  }
  if (ch === "<" && stream.match(LABEL)) return "labelName";
  if (ch === "@" && !wordBefore(stream) && stream.match(REFERENCE)) return "labelName";
  if (!wordBefore(stream) && stream.match(URL)) return "url";
  if (!stream.match(TEXT)) stream.next();
  return textStyle(state);
}

// --- math

function math(stream, state) {
  const found = commentOrString(stream, state);
  if (found !== undefined) return found;
  const ch = stream.peek();
  if (ch === "$") {
    stream.next();
    pop(state);
    return "string.special";
  }
  if (ch === "\\") {
    stream.next();
    stream.next();
    return "escape";
  }
  if (ch === "#") return hash(stream, state);
  if (!stream.match(/^[^$\\"#\/]+/)) stream.next();
  return "string.special";
}

// --- the parser

function startState() {
  return {
    stack: [{ mode: "markup" }], // the document's markup: never closed
    comment: 0, // depth of open block comments
    string: false, // inside a string that goes on past the line
    raw: 0, // backticks of an open raw block
    heading: false,
    strong: false,
    emphasis: false,
  };
}

function copyState(state) {
  return { ...state, stack: state.stack.map((frame) => ({ ...frame })) };
}

// Frames that end with their line: "#let ..." statements and "#name" expressions.
function endLine(state) {
  let frame = top(state);
  while (frame.mode === "code" && (frame.kind === "line" || frame.kind === "expr") && state.stack.length > 1) {
    pop(state);
    frame = top(state);
  }
  state.heading = false;
}

function step(stream, state) {
  if (state.comment > 0) return blockComment(stream, state);
  if (state.string) return string(stream, state);
  if (state.raw > 0) return raw(stream, state);
  const frame = top(state);
  if (frame.mode === "code") return code(stream, state, frame);
  if (frame.mode === "math") return math(stream, state);
  return markup(stream, state, frame);
}

function token(stream, state) {
  try {
    if (stream.sol()) endLine(state);
    const start = stream.pos;
    let style;
    // A frame may end without reading anything (undefined): try the one below.
    for (let i = 0; i < MAX_DEPTH + 2 && stream.pos === start; i++) style = step(stream, state);
    if (stream.pos === start) stream.next();
    return style || null;
  } catch (error) {
    // Never let an unforeseen input stop the highlighting: start afresh.
    Object.assign(state, startState());
    stream.skipToEnd();
    return null;
  }
}

export const typstLanguage = StreamLanguage.define({
  name: "typst",
  startState,
  copyState,
  token,
  blankLine(state) {
    endLine(state);
    state.strong = false; // a paragraph ends
    state.emphasis = false;
  },
  languageData: { commentTokens: { line: "//", block: { open: "/*", close: "*/" } } },
});

// basicSetup's default style colours most of these tags; it leaves raw text,
// function names and variables plain, so they get their colours here (a
// second highlighter turns off the fallback one, hence both).
const typstExtras = HighlightStyle.define([
  { tag: tags.monospace, color: "#1a5e63", backgroundColor: "#f2f4f5" },
  { tag: tags.function(tags.variableName), color: "#05a" },
  { tag: tags.variableName, color: "#256" },
  { tag: tags.propertyName, color: "#256" },
]);

export function typst() {
  return [
    typstLanguage,
    syntaxHighlighting(defaultHighlightStyle),
    syntaxHighlighting(typstExtras),
    EditorView.lineWrapping,
  ];
}
