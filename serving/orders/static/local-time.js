// Server-rendered times arrive as <time datetime="...Z">… UTC</time>; show them in the reader's own zone.
"use strict";

(() => {
  const pad = (n) => String(n).padStart(2, "0");
  const rewrite = () => {
    for (const node of document.querySelectorAll("time.local[datetime]")) {
      const moment = new Date(node.getAttribute("datetime"));
      if (Number.isNaN(moment.getTime())) continue;
      node.textContent = `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())} ` +
        `${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
      node.title = node.getAttribute("datetime");
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", rewrite); else rewrite();
})();
