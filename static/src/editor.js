// Entry point of static/vendor/codemirror.bundle.js (built by scripts/build-assets.sh).
//
// window.GradlabEditor.create(textarea, options) replaces a <textarea> with a
// CodeMirror 6 editor for Python and returns a handle:
//   handle.view          the EditorView
//   handle.getValue()    the current code
//   handle.setValue(s)   replace the code (also updates the textarea and the draft)
//   handle.clearDraft()  forget the saved draft (call it once a submission is accepted)
//   handle.hasDraft      true when the editor opened on a draft instead of the textarea's text
// options:
//   draftKey   string; when set, every edit is saved to localStorage under
//              "gradlab:draft:<draftKey>" and restored on the next visit (one per exercise)
//   readOnly   boolean
//   minLines   number of lines the editor is at least tall (default 12)
//   onSubmit   function called on Ctrl+Enter / Cmd+Enter (the key then changes nothing in the code)
// Indentation is 4 spaces (Tab indents the selection, Shift+Tab dedents). Syntax colours
// come from CSS variables (--cm-*, static/css/grader.css), so light and dark schemes both read well.
// The textarea stays in the form (hidden) and always holds the current code, so a
// plain form POST submits what the learner sees.
import { basicSetup } from "codemirror";
import { indentWithTab } from "@codemirror/commands";
import { python } from "@codemirror/lang-python";
import { HighlightStyle, indentUnit, syntaxHighlighting } from "@codemirror/language";
import { EditorState, Prec } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { tags } from "@lezer/highlight";

const DRAFT_PREFIX = "gradlab:draft:";
const LINE_HEIGHT_EM = 1.5;

function readDraft(key) {
  try {
    return window.localStorage.getItem(DRAFT_PREFIX + key);
  } catch (error) {
    return null; // storage disabled (private mode, policy): the editor still works
  }
}

function writeDraft(key, text) {
  try {
    window.localStorage.setItem(DRAFT_PREFIX + key, text);
  } catch (error) {
    /* quota or policy: drafts are a convenience, never a reason to fail */
  }
}

function removeDraft(key) {
  try {
    window.localStorage.removeItem(DRAFT_PREFIX + key);
  } catch (error) {
    /* see writeDraft */
  }
}

const theme = EditorView.theme({
  "&": {
    fontSize: "0.92rem",
    border: "1px solid var(--border, #d0d7e2)",
    borderRadius: "var(--radius, 8px)",
    backgroundColor: "var(--code-bg, #f7f8fb)",
    color: "var(--text, #1b2233)",
  },
  "&.cm-focused": { outline: "2px solid var(--accent, #3b5bdb)", outlineOffset: "1px" },
  ".cm-content": { fontFamily: "var(--font-mono, ui-monospace, monospace)", caretColor: "var(--text, #1b2233)" },
  ".cm-gutters": {
    backgroundColor: "var(--surface-2, #eef1f6)",
    color: "var(--muted, #5b6478)",
    borderRight: "1px solid var(--border, #d0d7e2)",
  },
  ".cm-activeLine": { backgroundColor: "var(--code-active, rgba(59, 91, 219, 0.06))" },
  ".cm-activeLineGutter": { backgroundColor: "var(--code-active, rgba(59, 91, 219, 0.06))" },
  ".cm-cursor": { borderLeftColor: "var(--text, #1b2233)" },
  ".cm-selectionBackground, &.cm-focused .cm-selectionBackground, ::selection": {
    backgroundColor: "var(--cm-selection, rgba(59, 91, 219, 0.25)) !important",
  },
  ".cm-matchingBracket": { backgroundColor: "var(--cm-bracket, rgba(31, 122, 69, 0.25))", outline: "none" },
});

// Colours are CSS variables defined for both colour schemes (AA contrast on --code-bg).
const highlight = HighlightStyle.define([
  { tag: [tags.keyword, tags.controlKeyword, tags.definitionKeyword, tags.moduleKeyword, tags.operatorKeyword],
    color: "var(--cm-keyword)" },
  { tag: [tags.string, tags.special(tags.string)], color: "var(--cm-string)" },
  { tag: [tags.number, tags.bool, tags.null, tags.atom], color: "var(--cm-number)" },
  { tag: [tags.comment, tags.lineComment, tags.blockComment], color: "var(--cm-comment)", fontStyle: "italic" },
  { tag: [tags.function(tags.variableName), tags.function(tags.definition(tags.variableName))],
    color: "var(--cm-function)" },
  { tag: [tags.definition(tags.variableName), tags.className], color: "var(--cm-definition)" },
  { tag: [tags.propertyName], color: "var(--cm-property)" },
  { tag: [tags.operator, tags.punctuation, tags.bracket], color: "var(--cm-punctuation)" },
  { tag: [tags.self, tags.standard(tags.variableName)], color: "var(--cm-builtin)" },
  { tag: tags.invalid, color: "var(--cm-invalid)" },
]);

function create(textarea, options) {
  const settings = Object.assign({ draftKey: "", readOnly: false, minLines: 12, onSubmit: null }, options || {});
  const initial = textarea.value;
  const draft = settings.draftKey ? readDraft(settings.draftKey) : null;
  const hasDraft = draft !== null && draft !== initial;
  const startText = hasDraft ? draft : initial;
  textarea.value = startText;

  const syncOut = EditorView.updateListener.of((update) => {
    if (!update.docChanged) return;
    const text = update.state.doc.toString();
    textarea.value = text;
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    if (settings.draftKey) writeDraft(settings.draftKey, text);
  });

  const view = new EditorView({
    parent: textarea.parentNode,
    state: EditorState.create({
      doc: startText,
      extensions: [
        // Ctrl/Cmd+Enter submits; highest precedence so basicSetup's "insert blank line" never runs.
        Prec.highest(
          keymap.of([
            {
              key: "Mod-Enter",
              run: () => {
                if (typeof settings.onSubmit === "function") settings.onSubmit();
                return true;
              },
            },
          ])
        ),
        basicSetup,
        indentUnit.of("    "),
        EditorState.tabSize.of(4),
        syntaxHighlighting(highlight),
        keymap.of([indentWithTab]),
        python(),
        theme,
        syncOut,
        EditorState.readOnly.of(Boolean(settings.readOnly)),
        EditorView.contentAttributes.of({ "aria-label": textarea.getAttribute("aria-label") || "Code editor" }),
        EditorView.theme({ ".cm-content, .cm-gutter": { minHeight: `${settings.minLines * LINE_HEIGHT_EM}em` } }),
      ],
    }),
  });
  textarea.parentNode.insertBefore(view.dom, textarea);
  textarea.hidden = true;

  return {
    view,
    hasDraft,
    getValue: () => view.state.doc.toString(),
    setValue: (text) => view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } }),
    clearDraft: () => {
      if (settings.draftKey) removeDraft(settings.draftKey);
    },
  };
}

window.GradlabEditor = { create, draftPrefix: DRAFT_PREFIX };
