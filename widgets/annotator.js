// LineAnnotator front end (anywidget ESM; no build step).
//
// State lives in the model (traitlets on the Python side): `lines`, `counted`, `labels`
// (0 unlabelled, 1 correct, -1 wrong), `cursor`, `undo_stack`, `submitted`, `next_requested`,
// `feedback` (gold truth, filled in by Python only after a submit), `message`, `disabled`.
// Every action here changes the model and saves it, so the kernel always holds what the
// annotator sees. The key map mirrors LineAnnotator.press() in annotator.py.

const KEYWORDS = new Set([
  "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
  "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
  "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
  "try", "while", "with", "yield", "match", "case",
]);
const CONSTANTS = new Set(["True", "False", "None"]);
const BUILTINS = new Set([
  "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "int",
  "isinstance", "len", "list", "map", "max", "min", "ord", "chr", "print", "range", "reversed",
  "round", "set", "sorted", "str", "sum", "tuple", "zip", "self", "super", "type", "iter",
  "next", "open", "repr", "hash", "pow", "format", "bin", "hex", "oct",
]);
const NUMBER = /^(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?[jJ]?)/;
const IDENT = /^[A-Za-z_\u00C0-\uFFFF][A-Za-z0-9_\u00C0-\uFFFF]*/;
const STRING_START = /^([rRbBuUfF]{0,2})("""|'''|"|')/;

// Tokenise one line of Python. `state` is the open triple quote carried from the line
// before ("" when none). Returns [tokens, state]; a token is [cssClass|null, text].
export function highlightLine(text, state) {
  const out = [];
  let i = 0;
  let afterDef = false;
  const push = (cls, s) => { if (s) out.push([cls, s]); };
  if (state) {
    const end = text.indexOf(state);
    if (end < 0) { push("str", text); return [out, state]; }
    push("str", text.slice(0, end + 3));
    i = end + 3;
    state = "";
  }
  while (i < text.length) {
    const rest = text.slice(i);
    const ch = rest[0];
    if (ch === "#") { push("comment", rest); break; }
    const s = STRING_START.exec(rest);
    if (s && (s[1] === "" || !IDENT.test(text.slice(Math.max(0, i - 1), i)))) {
      const q = s[2];
      const start = s[0].length;
      if (q.length === 3) {
        const end = rest.indexOf(q, start);
        if (end < 0) { push("str", rest); return [out, q]; }
        push("str", rest.slice(0, end + 3)); i += end + 3; continue;
      }
      let j = start;
      while (j < rest.length && rest[j] !== q) j += rest[j] === "\\" ? 2 : 1;
      push("str", rest.slice(0, j + 1)); i += j + 1; continue;
    }
    const id = IDENT.exec(rest);
    if (id) {
      const w = id[0];
      let cls = null;
      if (afterDef) { cls = "def"; afterDef = false; }
      else if (CONSTANTS.has(w)) cls = "const";
      else if (KEYWORDS.has(w)) { cls = "kw"; afterDef = (w === "def" || w === "class"); }
      else if (BUILTINS.has(w)) cls = "builtin";
      push(cls, w); i += w.length; continue;
    }
    const n = NUMBER.exec(rest);
    if (n && n[0] !== ".") { push("num", n[0]); i += n[0].length; continue; }
    if (ch === "@" && IDENT.test(rest.slice(1))) {
      const d = IDENT.exec(rest.slice(1))[0];
      push("deco", "@" + d); i += 1 + d.length; continue;
    }
    let j = 1;  // a run of plain characters
    while (j < rest.length && !/[#A-Za-z_0-9"'@.\u00C0-\uFFFF]/.test(rest[j])) j++;
    push(null, rest.slice(0, j)); i += j;
  }
  return [out, ""];
}

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) node.appendChild(c);
  return node;
}

function render({ model, el: host }) {
  const root = el("div", {
    class: "crlhf-la",
    tabindex: "0",
    role: "application",
    "aria-roledescription": "line annotator",
    "data-lm-suppress-shortcuts": "true",
  });
  const header = el("div", { class: "crlhf-la-header" });
  const title = el("div", { class: "crlhf-la-title" });
  const progress = el("progress", { class: "crlhf-la-progress", max: "1", value: "0" });
  const progressText = el("span", { class: "crlhf-la-progress-text", "aria-live": "polite" });
  header.append(title, el("div", { class: "crlhf-la-progress-box" }, [progress, progressText]));
  const prompt = el("details", { class: "crlhf-la-prompt" });
  const promptPre = el("pre", {});
  prompt.append(el("summary", { text: "Task prompt" }), promptPre);
  const list = el("div", { class: "crlhf-la-lines", role: "list" });
  const footer = el("div", { class: "crlhf-la-footer" });
  const undoBtn = el("button", { class: "crlhf-la-undo", type: "button", "aria-label": "Undo the last label (u)", text: "Undo (u)" });
  const submitBtn = el("button", { class: "crlhf-la-submit", type: "button", "aria-label": "Submit labels (Enter)", text: "Submit (Enter)" });
  const nextBtn = el("button", { class: "crlhf-la-next", type: "button", "aria-label": "Next program (Enter)", text: "Next program (Enter)" });
  const help = el("div", { class: "crlhf-la-help", text: "j/k or \u2191/\u2193 move \u00b7 c or 1 correct \u00b7 w or 2 wrong \u00b7 u undo \u00b7 Enter submit" });
  const message = el("div", { class: "crlhf-la-message", role: "status", "aria-live": "polite" });
  footer.append(undoBtn, submitBtn, nextBtn, message);
  root.append(header, prompt, list, footer, help);
  host.appendChild(root);

  let rows = [];

  const get = (name) => model.get(name);
  const counted = () => { const c = get("counted") || []; const n = (get("lines") || []).length; return Array.from({ length: n }, (_, i) => c.length ? !!c[i] : true); };
  const locked = () => get("disabled") || get("submitted");
  const save = (changes) => { for (const [k, v] of Object.entries(changes)) model.set(k, v); model.save_changes(); };
  const say = (text, kind = "info") => save({ message: text, message_kind: kind });

  function step(from, delta) {
    const c = counted();
    for (let i = from + delta; i >= 0 && i < c.length; i += delta) if (c[i]) return i;
    return from;
  }

  function setLabel(value, line) {
    if (locked()) return;
    const c = counted();
    if (line === undefined) line = get("cursor");
    if (line < 0 || line >= c.length || !c[line]) return;
    const labels = (get("labels") || []).slice();
    while (labels.length < c.length) labels.push(0);
    const stack = (get("undo_stack") || []).slice();
    stack.push([line, labels[line], get("cursor")]);
    labels[line] = value;
    const cursor = get("advance") ? step(line, 1) : line;
    save({ labels, undo_stack: stack, cursor, message: "", message_kind: "info" });
  }

  function undo() {
    if (locked()) return;
    const stack = (get("undo_stack") || []).slice();
    if (!stack.length) { say("Nothing to undo."); return; }
    const [line, prev] = stack.pop();
    const labels = (get("labels") || []).slice();
    labels[line] = prev;
    save({ labels, undo_stack: stack, cursor: line, message: "", message_kind: "info" });
  }

  function move(delta) {
    if (get("disabled")) return;
    const c = counted();
    let cur = get("cursor");
    if (cur < 0 || cur >= c.length || !c[cur]) cur = step(-1, 1);
    save({ cursor: step(cur, delta) });
  }

  function submit() {
    if (get("disabled")) return;
    if (get("submitted")) {
      if ((get("feedback") || []).length) save({ next_requested: true });
      return;
    }
    const c = counted();
    const labels = get("labels") || [];
    const done = c.filter((x, i) => x && labels[i]).length;
    const need = c.filter((x) => x).length;
    if (!done) { say("Label at least one line first (c = correct, w = wrong).", "error"); return; }
    if (get("require_all") && done < need) { say(`Label every line first: ${need - done} left.`, "error"); return; }
    save({ submitted: true, message: "Saving\u2026", message_kind: "info" });
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.key === "Tab" || e.key === "Escape") return;
    e.stopPropagation();  // JupyterLab must not see j/k/Enter/... typed into the widget
    const k = e.key;
    let handled = true;
    if (k === "j" || k === "ArrowDown") move(1);
    else if (k === "k" || k === "ArrowUp") move(-1);
    else if (k === "c" || k === "1") setLabel(1);
    else if (k === "w" || k === "2") setLabel(-1);
    else if (k === "u") undo();
    else if (k === "Enter" && !e.shiftKey) submit();
    else if (k === "n" && get("submitted")) submit();
    else handled = false;
    if (handled) e.preventDefault();
  }

  function buildLines() {
    list.replaceChildren();
    rows = [];
    const lines = get("lines") || [];
    const c = counted();
    let state = "";
    lines.forEach((text, i) => {
      const [tokens, next] = highlightLine(text, state);
      state = next;
      const code = el("code", { class: "crlhf-la-code" });
      for (const [cls, s] of tokens) code.appendChild(cls ? el("span", { class: "crlhf-tok-" + cls, text: s }) : document.createTextNode(s));
      if (!text) code.appendChild(document.createTextNode(" "));
      const num = el("span", { class: "crlhf-la-num", "aria-hidden": "true", text: String(i + 1) });
      const controls = el("span", { class: "crlhf-la-controls" });
      const mark = el("span", { class: "crlhf-la-mark" });
      let ok = null, bad = null;
      if (c[i]) {
        ok = el("button", { class: "crlhf-la-btn crlhf-la-correct", type: "button", "aria-label": `Line ${i + 1}: correct`, title: "correct (c)", text: "\u2713" });
        bad = el("button", { class: "crlhf-la-btn crlhf-la-wrong", type: "button", "aria-label": `Line ${i + 1}: wrong`, title: "wrong (w)", text: "\u2717" });
        ok.addEventListener("click", (e) => { e.stopPropagation(); setLabel(1, i); root.focus(); });
        bad.addEventListener("click", (e) => { e.stopPropagation(); setLabel(-1, i); root.focus(); });
        controls.append(ok, bad);
      }
      const row = el("div", { class: "crlhf-la-line" + (c[i] ? "" : " crlhf-la-skip"), role: "listitem", "data-line": String(i), "aria-label": `Line ${i + 1}` }, [num, controls, code, mark]);
      row.addEventListener("click", () => { if (c[i] && !get("disabled")) save({ cursor: i }); root.focus(); });
      list.appendChild(row);
      rows.push({ row, ok, bad, mark });
    });
    update();
  }

  function update() {
    const labels = get("labels") || [];
    const c = counted();
    const cursor = get("cursor");
    const feedback = get("feedback") || [];
    const submitted = get("submitted");
    const disabled = get("disabled");
    rows.forEach(({ row, ok, bad, mark }, i) => {
      const lab = labels[i] || 0;
      row.classList.toggle("crlhf-la-cursor", i === cursor && !disabled);
      row.classList.toggle("crlhf-la-is-correct", lab === 1);
      row.classList.toggle("crlhf-la-is-wrong", lab === -1);
      row.setAttribute("data-label", String(lab));
      if (ok) { ok.setAttribute("aria-pressed", String(lab === 1)); ok.disabled = !!(disabled || submitted); }
      if (bad) { bad.setAttribute("aria-pressed", String(lab === -1)); bad.disabled = !!(disabled || submitted); }
      const truth = feedback.length ? feedback[i] : 0;
      row.classList.toggle("crlhf-la-fb-right", !!truth && c[i] && lab === truth);
      row.classList.toggle("crlhf-la-fb-miss", !!truth && c[i] && lab !== 0 && lab !== truth);
      mark.textContent = !truth || !c[i] ? "" : (truth === 1 ? "correct" : "wrong") + (lab === 0 ? "" : lab === truth ? " \u2014 you agree" : " \u2014 you differ");
    });
    const need = c.filter((x) => x).length;
    const done = c.filter((x, i) => x && labels[i]).length;
    progress.max = Math.max(need, 1);
    progress.value = done;
    progress.setAttribute("aria-label", `${done} of ${need} lines labelled`);
    progressText.textContent = `${done} / ${need} lines labelled`;
    title.textContent = get("header") || get("program_id") || "";
    const p = get("prompt") || "";
    promptPre.textContent = p;
    prompt.style.display = p ? "" : "none";
    message.textContent = get("message") || "";
    message.className = "crlhf-la-message crlhf-la-msg-" + (get("message_kind") || "info");
    undoBtn.disabled = !!(disabled || submitted || !(get("undo_stack") || []).length);
    submitBtn.disabled = !!(disabled || submitted);
    submitBtn.style.display = submitted && feedback.length ? "none" : "";
    nextBtn.style.display = submitted && feedback.length ? "" : "none";
    root.classList.toggle("crlhf-la-disabled", !!disabled);
    root.setAttribute("data-program-id", get("program_id") || "");
    root.setAttribute("data-submitted", String(!!submitted));
    root.setAttribute("aria-label", `Line annotator${get("program_id") ? ", program " + get("program_id") : ""}: ${done} of ${need} lines labelled. Keys: j and k move, c correct, w wrong, u undo, Enter submit.`);
    const cur = rows[cursor];
    if (cur && root.contains(document.activeElement)) cur.row.scrollIntoView({ block: "nearest" });
  }

  root.addEventListener("keydown", onKey);
  undoBtn.addEventListener("click", (e) => { e.stopPropagation(); undo(); root.focus(); });
  submitBtn.addEventListener("click", (e) => { e.stopPropagation(); submit(); root.focus(); });
  nextBtn.addEventListener("click", (e) => { e.stopPropagation(); submit(); root.focus(); });

  const onLines = () => buildLines();
  model.on("change:lines", onLines);
  model.on("change:counted", onLines);
  const others = ["labels", "cursor", "feedback", "submitted", "disabled", "message", "message_kind", "header", "prompt", "program_id", "undo_stack"];
  for (const name of others) model.on("change:" + name, update);
  buildLines();
  if (get("autofocus")) setTimeout(() => root.focus({ preventScroll: true }), 0);
  const onProgram = () => { if (get("autofocus") || host.contains(document.activeElement)) root.focus({ preventScroll: true }); };
  model.on("change:program_id", onProgram);

  return () => {
    model.off("change:lines", onLines);
    model.off("change:counted", onLines);
    for (const name of others) model.off("change:" + name, update);
    model.off("change:program_id", onProgram);
    root.removeEventListener("keydown", onKey);
  };
}

export default { render };
