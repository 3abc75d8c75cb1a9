// Lessonloop review portal: keyboard shortcuts, dialogs, clickable rows. No build step.
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const page = () => document.body.dataset.page || "";

  // Keys typed into a text field are text, not shortcuts (a focused radio or checkbox is not a text field).
  const TEXT_INPUTS = ["text", "search", "password", "number", "email", "url", "tel"];
  function typing(target) {
    if (!target) return false;
    const tag = target.tagName;
    if (tag === "INPUT") return TEXT_INPUTS.includes((target.type || "text").toLowerCase());
    return tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }
  function openDialog(id) {
    const d = document.getElementById(id);
    if (d && !d.open) d.showModal();
    return d;
  }
  function anyDialogOpen() {
    return $$("dialog").some((d) => d.open);
  }
  function go(link) {
    if (link && link.href) window.location.href = link.href;
  }
  function toggleGuidelines() {
    const g = $("#guidelines");
    if (g) { g.open = !g.open; if (g.open) g.scrollIntoView({ behavior: "smooth", block: "nearest" }); }
    else window.location.href = "/portal/guidelines";
  }

  // --- queue: j/k selection over rows, Enter/o opens ----------------------------------------------
  let selected = -1;
  function rows() { return $$("#queue tbody tr[data-href]"); }
  function select(i) {
    const r = rows();
    if (!r.length) return;
    selected = Math.max(0, Math.min(r.length - 1, i));
    r.forEach((row, k) => row.classList.toggle("selected", k === selected));
    r[selected].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("click", (e) => {
    const opener = e.target.closest("[data-open]");
    if (opener) { openDialog(opener.dataset.open); return; }
    if (e.target.closest("[data-help]")) { openDialog("help-dialog"); return; }
    const closer = e.target.closest("[data-close]");
    if (closer) { closer.closest("dialog").close(); return; }
    const row = e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a, button, input, label")) window.location.href = row.dataset.href;
  });

  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.metaKey) return;
    // Ctrl+Enter saves an edit form from anywhere in it.
    if (e.ctrlKey && e.key === "Enter" && page() === "edit") {
      const f = $("#edit-form");
      if (f) { e.preventDefault(); f.requestSubmit(); }
      return;
    }
    if (e.ctrlKey) return;
    const reject = $("#reject-dialog");
    if (reject && reject.open) {
      if (/^[1-9]$/.test(e.key) && !typing(e.target)) {
        const radios = $$("input[name=reason]", reject);
        const r = radios[Number(e.key) - 1];
        if (r) { r.checked = true; e.preventDefault(); }
      } else if (e.key === "Enter" && e.target.type !== "button") {
        e.preventDefault();
        $("#reject-form").requestSubmit();
      }
      return;
    }
    if (anyDialogOpen()) return;
    if (typing(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    const key = e.key;
    if (key === "?") { e.preventDefault(); openDialog("help-dialog"); return; }
    if (key === "g") { e.preventDefault(); toggleGuidelines(); return; }
    if (page() === "queue") {
      if (key === "j") { e.preventDefault(); select(selected + 1); }
      else if (key === "k") { e.preventDefault(); select(selected - 1); }
      else if ((key === "Enter" || key === "o") && selected >= 0) { e.preventDefault(); window.location.href = rows()[selected].dataset.href; }
      else if (key === "/") { e.preventDefault(); const q = $("#f-q"); if (q) q.focus(); }
      return;
    }
    if (page() === "item") {
      if (key === "j") { e.preventDefault(); go($("#next")); }
      else if (key === "k") { e.preventDefault(); go($("#prev")); }
      else if (key === "a") { const f = $("#accept-form"); if (f) { e.preventDefault(); f.requestSubmit(); } }
      else if (key === "r") { if ($("#reject-dialog")) { e.preventDefault(); openDialog("reject-dialog"); } }
      else if (key === "s") { if ($("#revision-dialog")) { e.preventDefault(); openDialog("revision-dialog"); $("#revision-note").focus(); } }
      else if (key === "e") { e.preventDefault(); go($("#edit")); }
    }
  });

  // A decision form submits once: a second key press while the page loads does nothing.
  document.addEventListener("submit", (e) => {
    const f = e.target;
    if (e.defaultPrevented) return;
    if (f.dataset.sent) { e.preventDefault(); return; }
    if (f.method && f.method.toLowerCase() === "post") f.dataset.sent = "1";
  });
  window.addEventListener("pageshow", () => $$("form[data-sent]").forEach((f) => delete f.dataset.sent));
})();
