// Building the page: elements from a tag, properties and children, where a child that is a
// string becomes a text node. Nothing here, or anywhere in the dashboard, parses markup from a
// string: whatever a trajectory, an event or an error holds is shown as text.
"use strict";

(function () {
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k in el && typeof v !== "string") el[k] = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    append(el, ...children);
    return el;
  }

  function append(el, ...children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function replace(el, ...children) {
    return append(clear(el), ...children);
  }

  // ---- formatting ----------------------------------------------------------------------------

  function num(v, digits) {
    if (v === null || v === undefined || v === "" || Number.isNaN(Number(v))) return "–";
    const x = Number(v);
    if (digits === undefined) digits = 3;
    if (x !== 0 && Math.abs(x) < Math.pow(10, -digits)) return x.toExponential(2);
    return x.toFixed(digits);
  }

  function pct(v) {
    return v === null || v === undefined ? "–" : (100 * Number(v)).toFixed(1) + " %";
  }

  function pvalue(p) {
    if (p === null || p === undefined) return "–";
    const x = Number(p);
    return x < 1e-4 ? x.toExponential(2) : x.toFixed(4);
  }

  function when(s) {
    if (!s) return "–";
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) return String(s);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function ci(pair) {
    return Array.isArray(pair) && pair.length === 2 ? "[" + num(pair[0]) + ", " + num(pair[1]) + "]" : "";
  }

  // JSON as readable text (for params, results, event data): shown with textContent
  function json(v) {
    if (v === undefined) return "";
    try {
      return typeof v === "string" ? v : JSON.stringify(v, null, 1).replace(/\n\s*/g, " ");
    } catch (e) {
      return String(v);
    }
  }

  function statusBadge(status) {
    return h("span", { class: "badge status-" + String(status).replace(/[^a-z]/g, "") }, String(status));
  }

  window.DOM = { h, append, clear, replace, num, pct, pvalue, when, ci, json, statusBadge };
})();
