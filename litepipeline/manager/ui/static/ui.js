// Small DOM helpers: elements are built, never parsed from strings (no injection).
import {get} from "./api.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "style") el.style.cssText = value;   // CSSOM: allowed by the pages' CSP
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value);
  }
  append(el, children);
  return el;
}

// Every state has an icon and a word, so none is told by colour alone.
export const STATES = {
  waiting: ["○", "waiting"],
  retrying: ["↻", "retry pending"],
  running: ["▶", "running"],
  stopping: ["◼", "stopping"],
  success: ["✓", "success"],
  failed: ["✗", "failed"],
  killed: ["■", "killed"],
  "not-run": ["–", "not run"],
  lost: ["⚠", "lost"],
};

export function badge(state) {
  const [icon, word] = STATES[state] || ["?", state];
  return h("span", {class: `badge st-${state}`}, h("span", {class: "icon", "aria-hidden": "true"}, icon), word);
}

/** "2026-12-01 11:20:03.123456" (the manager's local time) -> Date */
export function parseTime(text) {
  if (!text) return null;
  const date = new Date(text.replace(" ", "T").slice(0, 23));
  return isNaN(date) ? null : date;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || isNaN(seconds)) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function span(start, end) {
  const a = parseTime(start);
  if (!a) return null;
  const b = parseTime(end) || new Date();
  return Math.max(0, (b - a) / 1000);
}

export function shortTime(text) {
  return text ? text.slice(0, 19) : "";
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

/** A message line for an error, shown in the page (role=alert). */
export function errorBox(error) {
  return h("p", {class: "error", role: "alert"}, "✗ ", error.result ? `${error.result}: ` : "", error.message);
}

/** Runs fn at most once per `ms` after a burst of calls (a pushed burst, not a timer poll). */
export function coalesce(fn, ms = 200) {
  let timer = null;
  return (...args) => {
    if (timer !== null) return;
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
}

export function table(columns, rows, rowAttrs = () => ({})) {
  return h("div", {class: "table-wrap"},
    h("table", {class: "rows"},
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col", class: c.class}, c.title)))),
      h("tbody", {}, rows.map((row) => h("tr", rowAttrs(row),
        columns.map((c) => h("td", {"data-label": c.title, class: c.class}, c.cell(row))))))));
}

/** The Newer / "1–50 of N" / Older bar of an offset-paged list; go(offset) loads a page. */
export function pager(offset, shown, total, size, go) {
  return h("div", {class: "pager"},
    h("button", {type: "button", disabled: offset === 0, onclick: () => go(Math.max(0, offset - size))}, "← Newer"),
    h("span", {class: "muted"}, shown ? `${offset + 1}–${offset + shown} of ${total}` : ""),   // nothing on an empty page
    h("button", {type: "button", disabled: offset + shown >= total, onclick: () => go(offset + size)}, "Older →"));
}

/**
 * An offset-paged list of `route` (get(route, {offset, limit: size})): a table of the
 * answer's `key` rows with `columns` and `rowAttrs` (or a paragraph saying `empty`), then
 * the pager. Returns {el, load}; load() (re)loads the page shown, an error shows in el.
 */
export function pagedList({route, key, columns, rowAttrs, empty, size = 50}) {
  const el = h("div", {});
  let offset = 0;

  async function load() {
    let data;
    try {
      data = await get(route, {offset, limit: size});
    } catch (error) {
      el.replaceChildren(errorBox(error));
      return;
    }
    const rows = data[key];
    el.replaceChildren(
      rows.length ? table(columns, rows, rowAttrs) : h("p", {class: "empty"}, empty),
      pager(offset, rows.length, data.total, size, (at) => { offset = at; load(); }));
  }

  return {el, load};
}

/** The stages and statuses the tasks' and works' filters offer. */
export const STAGES = ["pending", "running", "stopping", "finished"];
export const STATUSES = ["success", "fail", "kill"];

/** A filter's <select>: "any", then the options ([value, text]), `value` selected. */
export function filterSelect(name, label, options, value) {
  return h("label", {}, label,
    h("select", {name}, h("option", {value: ""}, "any"),
      options.map(([v, text]) => h("option", {value: v, selected: v === value}, text))));
}

/** Goes to #/<page> with the form's filled filters (the keys of `filters`) in the query. */
export function showFiltered(page, form, filters) {
  const q = new URLSearchParams();
  for (const key of Object.keys(filters)) if (form.elements[key].value) q.set(key, form.elements[key].value);
  const text = q.toString();
  window.location.hash = text ? `#/${page}?${text}` : `#/${page}`;
}

/** Runs fn() for a page's button, telling how it went in `notice`. */
export async function act(notice, label, fn) {
  notice.replaceChildren(h("p", {class: "muted"}, `${label}…`));
  try {
    await fn();
    notice.replaceChildren(h("p", {class: "ok"}, `✓ ${label}: done`));
  } catch (error) {
    notice.replaceChildren(errorBox(error));
  }
}
