// Tasks: filters (stage, status, application, work, name) kept in the URL, keyset pages
// (fast at any depth), rows updated in place as rounds commit.
import {events, get, liveState} from "../api.js";
import {STAGES, STATUSES, badge, coalesce, duration, errorBox, filterSelect, h, shortTime, showFiltered, span, table}
  from "../ui.js";

const LIMIT = 50;

export async function mount(main, args, query) {
  const filters = {stage: query.get("stage") || "", status: query.get("status") || "",
    app_id: query.get("app_id") || "", work_id: query.get("work_id") || "", name: query.get("name") || ""};
  const cursors = [];     // `before` of each newer page, to go back
  let before = null;
  let apps = {};
  const rows = new Map(); // task_id -> <tr>
  const list = h("div", {});
  const banner = h("div", {class: "banner", hidden: true});

  try {
    const answer = await get("/app/list", {limit: 1000});
    apps = Object.fromEntries(answer.apps.map((a) => [a.application_id, a.name]));
  } catch (error) { /* the list still works with ids */ }

  const form = h("form", {class: "filters", role: "search"},
    filterSelect("stage", "Stage", STAGES.map((s) => [s, s]), filters.stage),
    filterSelect("status", "Status", STATUSES.map((s) => [s, s]), filters.status),
    filterSelect("app_id", "Application", Object.entries(apps), filters.app_id),
    h("label", {}, "Work", h("input", {name: "work_id", type: "search", value: filters.work_id, placeholder: "work id",
      size: 12})),
    h("label", {}, "Name", h("input", {name: "name", type: "search", value: filters.name, placeholder: "contains…"})),
    h("button", {type: "submit", class: "primary"}, "Filter"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    showFiltered("tasks", form, filters);
  });
  for (const el of form.querySelectorAll("select")) el.addEventListener("change", () => form.requestSubmit());

  function columns() {
    return [
      {title: "Name", cell: (t) => h("a", {href: `#/task/${t.task_id}`}, t.task_name)},
      {title: "State", cell: (t) => badge(t.state)},
      {title: "Application", cell: (t) => apps[t.application_id] || h("code", {}, t.application_id.slice(0, 8))},
      {title: "Created", cell: (t) => shortTime(t.create_at)},
      {title: "Duration", cell: (t) => duration(span(t.start_at, t.end_at))},
    ];
  }

  function install(data) {
    banner.hidden = true;
    rows.clear();
    const first = cursors.length * LIMIT;
    const total = `${data.total}${data.total_capped ? "+" : ""}`;
    const pager = h("div", {class: "pager"},
      h("button", {type: "button", disabled: !cursors.length, onclick: () => { before = cursors.pop(); load(); }}, "← Newer"),
      h("span", {class: "muted"}, data.tasks.length ? `${first + 1}–${first + data.tasks.length} of ${total}` : ""),
      h("button", {type: "button", disabled: !data.more, onclick: () => { cursors.push(before); before = data.next_before; load(); }}, "Older →"));
    list.replaceChildren(
      data.tasks.length
        ? table(columns(), data.tasks, (t) => ({dataset: {task: t.task_id}}))
        : h("p", {class: "empty"}, "No task matches."),
      pager);
    for (const tr of list.querySelectorAll("tr[data-task]")) rows.set(tr.dataset.task, tr);
  }

  const live = liveState({
    fetch: () => get("/ui/api/tasks", {...filters, before, limit: LIMIT}),
    install, apply: onEvent, failed: (error) => list.replaceChildren(errorBox(error)),
  });
  const load = live.load;
  const reload = coalesce(load, 250);

  function onEvent(event) {
    let created = 0;
    for (const task of event.tasks) {
      const tr = rows.get(task.task_id);
      if (tr) {   // a visible task moved: redraw its state and duration in place
        tr.children[1].replaceChildren(badge(task.state));
        tr.children[4].replaceChildren(duration(span(task.start_at, task.end_at)));
      } else if (event.created.includes(task.task_id)) {
        created += 1;
      }
    }
    if (!created) return;
    const filtered = Object.values(filters).some(Boolean);
    if (before === null && !filtered) {
      reload();   // the first page shows them as they come
    } else {
      banner.hidden = false;
      banner.replaceChildren(`${created} new task${created > 1 ? "s" : ""} created. `,
        h("a", {href: "#/tasks", onclick: () => { before = null; cursors.length = 0; load(); }}, "Show the newest"));
    }
  }

  main.replaceChildren(h("h1", {}, "Tasks"), form, banner, list);
  return events({topic: "tasks"}, {onReady: load, onEvent: live.onEvent});
}
