// anyint console: progressive enhancement only; every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons: data-copy names the element whose text is copied.
  for (const b of document.querySelectorAll("button[data-copy]")) {
    b.addEventListener("click", async () => {
      const el = document.getElementById(b.dataset.copy);
      if (!el) return;
      const text = el.textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch (_) {
        const r = document.createRange();
        r.selectNodeContents(el);
        const s = window.getSelection();
        s.removeAllRanges();
        s.addRange(r);
        document.execCommand("copy");
      }
      b.textContent = "Copied";
      setTimeout(() => { b.textContent = "Copy"; }, 2000);
    });
  }
  // Confirmations on destructive forms.
  for (const f of document.querySelectorAll("form[data-confirm]")) {
    f.addEventListener("submit", (e) => {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  }
  // Filters that apply as soon as a select changes.
  for (const f of document.querySelectorAll("form[data-autosubmit]")) {
    for (const s of f.querySelectorAll("select")) {
      s.addEventListener("change", () => f.submit());
    }
  }
  // Chart tooltips: the hover targets carry their text in data-tip (and <title> without JS).
  const tip = document.createElement("div");
  tip.className = "tip";
  tip.hidden = true;
  document.body.appendChild(tip);
  for (const h of document.querySelectorAll("svg [data-tip]")) {
    const title = h.querySelector("title");
    h.addEventListener("mouseenter", () => {
      if (title) title.remove();
      tip.textContent = h.dataset.tip;
      tip.hidden = false;
    });
    h.addEventListener("mousemove", (e) => {
      tip.style.left = Math.min(e.clientX + 12, window.innerWidth - tip.offsetWidth - 8) + "px";
      tip.style.top = (e.clientY + 14) + "px";
    });
    h.addEventListener("mouseleave", () => {
      tip.hidden = true;
      if (title) h.appendChild(title);
    });
  }
});
