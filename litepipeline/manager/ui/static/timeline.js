// Attempts on a timeline: one row per action, one bar per attempt (retries side by
// side), placed by when it was dispatched, started and ended; a table with the details.
import {badge, duration, h, parseTime, shortId, shortTime, table} from "./ui.js";

export function attemptState(a) {
  if (a.status === "success") return "success";
  if (a.status === "fail") return "failed";
  if (a.status === "kill") return "killed";
  if (a.end_at) return "lost";   // ended with no report: the node went away
  return "running";   // dispatched: it holds a slot until its report arrives
}

export function drawTimeline(attempts, nodeName) {
  if (!attempts.length) return h("p", {class: "empty"}, "No attempt yet: no action has been dispatched.");
  const now = new Date();
  const times = attempts.map((a) => ({a, from: parseTime(a.dispatched_at),
    start: parseTime(a.start_at), end: parseTime(a.end_at) || now}));
  const t0 = Math.min(...times.map((t) => t.from.getTime()));
  const t1 = Math.max(...times.map((t) => t.end.getTime()), t0 + 1);
  const pct = (t) => `${((t - t0) / (t1 - t0) * 100).toFixed(2)}%`;
  const rows = new Map();
  for (const t of times) {
    if (!rows.has(t.a.name)) rows.set(t.a.name, []);
    rows.get(t.a.name).push(t);
  }
  const chart = h("div", {class: "timeline", role: "img",
    "aria-label": `Attempts over ${duration((t1 - t0) / 1000)}`},
  h("div", {class: "tl-axis"}, h("span", {}, "0"), h("span", {}, duration((t1 - t0) / 2000)),
    h("span", {}, duration((t1 - t0) / 1000))),
  [...rows.entries()].map(([name, list]) => h("div", {class: "tl-row"},
    h("span", {class: "tl-name", title: name}, name),
    h("span", {class: "tl-track"}, list.map((t) => {
      const state = attemptState(t.a);
      const start = (t.start || t.from).getTime();
      const text = `${name} attempt ${t.a.attempt} on ${nodeName(t.a)}: ${duration((t.end - start) / 1000)}, ${state}`;
      return h("span", {class: `tl-bar st-${state}`, title: text,
        style: `left:${pct(t.from.getTime())};width:max(3px, calc(${pct(t.end.getTime())} - ${pct(t.from.getTime())}))`},
      t.a.attempt > 1 ? `↻${t.a.attempt}` : "");
    })))));
  const details = table([
    {title: "Action", cell: (a) => a.name},
    {title: "Attempt", cell: (a) => String(a.attempt)},
    {title: "Node", cell: (a) => nodeName(a)},
    {title: "Dispatched", cell: (a) => shortTime(a.dispatched_at)},
    {title: "Ran for", cell: (a) => (a.start_at ? duration(((parseTime(a.end_at) || now) - parseTime(a.start_at)) / 1000) : "")},
    {title: "Result", cell: (a) => [badge(attemptState(a)), a.returncode !== null && a.returncode !== undefined ? ` rc ${a.returncode}` : ""]},
    {title: "Message", cell: (a) => a.message || ""},
  ], attempts);
  return h("div", {}, chart, h("details", {class: "attempt-table"}, h("summary", {}, `All ${attempts.length} attempts`), details));
}

export function nodeLabel(addresses) {
  return (a) => (a.node_id ? `${shortId(a.node_id)}${addresses[a.node_id] ? ` (${addresses[a.node_id]})` : ""}` : "—");
}
