// Works: filters (workflow, stage, status) kept in the URL, pages, and rows redrawn as
// rounds commit changes to works.
import {events, get} from "../api.js";
import {STAGES, STATUSES, badge, coalesce, duration, errorBox, filterSelect, h, pager, shortTime, showFiltered, span,
  table} from "../ui.js";
import {stateOf} from "./workflow.js";

const LIMIT = 50;

export async function mount(main, args, query) {
  const filters = {workflow_id: query.get("workflow_id") || "", stage: query.get("stage") || "",
    status: query.get("status") || ""};
  let offset = 0;
  let workflows = {};
  const list = h("div", {});
  try {
    const answer = await get("/workflow/list", {limit: 1000});
    workflows = Object.fromEntries(answer.workflows.map((w) => [w.workflow_id, w.name]));
  } catch (error) { /* the list still works with ids */ }

  const form = h("form", {class: "filters", role: "search"},
    filterSelect("workflow_id", "Workflow", Object.entries(workflows), filters.workflow_id),
    filterSelect("stage", "Stage", STAGES.map((s) => [s, s]), filters.stage),
    filterSelect("status", "Status", STATUSES.map((s) => [s, s]), filters.status));
  form.addEventListener("submit", (e) => e.preventDefault());
  for (const el of form.querySelectorAll("select")) el.addEventListener("change", () => showFiltered("works", form, filters));

  async function load() {
    let data;
    try {
      data = await get("/work/list", {...filters, offset, limit: LIMIT});
    } catch (error) {
      list.replaceChildren(errorBox(error));
      return;
    }
    list.replaceChildren(data.works.length
      ? table([
        {title: "Name", cell: (w) => h("a", {href: `#/work/${w.work_id}`}, w.name)},
        {title: "State", cell: (w) => badge(stateOf(w))},
        {title: "Workflow", cell: (w) => h("a", {href: `#/workflow/${w.workflow_id}`},
          workflows[w.workflow_id] || w.workflow_id.slice(0, 8))},
        {title: "Created", cell: (w) => shortTime(w.create_at)},
        {title: "Duration", cell: (w) => duration(span(w.start_at, w.end_at))},
      ], data.works, (w) => ({dataset: {work: w.work_id}}))
      : h("p", {class: "empty"}, "No work matches."),
    pager(offset, data.works.length, data.total, LIMIT, (at) => { offset = at; load(); }));
  }

  const reload = coalesce(load, 300);
  main.replaceChildren(h("h1", {}, "Works"), form, list);
  // every work's changes: a visible one or a new one redraws the page (coalesced)
  return events({topic: "work"}, {onReady: load, onEvent: (e) => { if (e.work) reload(); }});
}
