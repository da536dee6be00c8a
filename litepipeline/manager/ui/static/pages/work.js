// One work: its workflow's DAG, each entry coloured (and labelled) by its state and
// redrawn live as rounds commit; each entry links to its task; stop / recover / rerun.
import {events, get, liveState, send} from "../api.js";
import {drawDag} from "../dag.js";
import {act, badge, coalesce, duration, errorBox, h, shortTime, span, table} from "../ui.js";

const NARROW = 700;
const TASK_WORDS = {running: "running", stopping: "stopping"};
const END_WORDS = {success: "success", fail: "failed", kill: "killed"};

function taskWord(task) {
  if (task.stage === "finished") return END_WORDS[task.status] || "failed";
  return TASK_WORDS[task.stage] || "waiting";
}

/** As views.entry_state: the task's word while it is unfinished, else the entry's own. */
function entryState(entry, task, workFinished) {
  const stage = entry.stage || "pending";
  if (stage !== "finished" && task) return taskWord(task);
  if (stage === "finished") return END_WORDS[entry.status] || "failed";
  return workFinished && stage === "pending" ? "not-run" : "waiting";
}

export async function mount(main, [workId]) {
  if (!workId) {
    window.location.hash = "#/works";
    return null;
  }
  const down = window.innerWidth < NARROW;
  let view = null;
  let dag = null;
  const tasks = new Map();   // task_id -> task row (as the event or the page gives it)
  const head = h("div", {class: "task-head"});
  const notice = h("div", {"aria-live": "polite"});
  const graph = h("div", {class: "dag-wrap"});
  const list = h("div", {});
  const crumbs = h("p", {class: "crumbs"}, h("a", {href: "#/works"}, "← Works"));
  main.replaceChildren(crumbs, head, notice,
    h("section", {}, h("h2", {}, "Applications"), legend(), graph),
    h("section", {}, h("h2", {}, "Entries"), list));

  function legend() {
    return h("p", {class: "legend"}, ["waiting", "running", "success", "failed", "killed", "not-run"].map(badge),
      h("span", {class: "muted"}, "Choose an application to open its task."));
  }

  function controls(work) {
    const out = [];
    if (work.stage !== "finished") {
      out.push(h("button", {type: "button", class: "danger", id: "stop",
        onclick: () => act(notice, "Stop", () => send("PUT", "/work/stop", {work_id: workId, signal: -15}))}, "■ Stop"));
    } else {
      if (work.status === "fail" || work.status === "kill") {
        out.push(h("button", {type: "button", id: "recover",
          onclick: () => act(notice, "Recover", () => send("PUT", "/work/recover", {work_id: workId}))}, "↻ Recover"));
      }
      out.push(h("button", {type: "button", id: "rerun", onclick: () => act(notice, "Rerun", async () => {
        const answer = await send("PUT", "/work/rerun", {work_id: workId});
        window.location.hash = `#/work/${answer.work_id}`;
      })}, "⟳ Rerun as new work"));
    }
    out.push(h("a", {class: "button quiet", href: `#/tasks?work_id=${encodeURIComponent(workId)}`}, "☰ Its tasks"));
    return h("div", {class: "controls"}, out);
  }

  function renderHead() {
    const w = view.work;
    head.replaceChildren(
      h("h1", {}, w.name, " ", badge(w.state)),
      h("dl", {class: "facts"},
        h("dt", {}, "Work id"), h("dd", {}, h("code", {}, w.work_id)),
        h("dt", {}, "Workflow"), h("dd", {}, h("a", {href: `#/workflow/${w.workflow_id}`}, h("code", {}, w.workflow_id))),
        h("dt", {}, "Created"), h("dd", {}, shortTime(w.create_at)),
        h("dt", {}, "Duration"), h("dd", {}, w.start_at ? duration(span(w.start_at, w.end_at)) : "not started"),
        w.event_task_id ? [h("dt", {}, "Event application"),
          h("dd", {}, h("a", {href: `#/task/${w.event_task_id}`}, "its task →"))] : null,
        w.message ? [h("dt", {}, "Message"), h("dd", {class: "message"}, w.message)] : null),
      controls(w));
  }

  function renderList() {
    list.replaceChildren(table([
      {title: "Application", cell: (e) => e.name},
      {title: "State", cell: (e) => badge(e.state)},
      {title: "Task", cell: (e) => (e.task_id ? h("a", {href: `#/task/${e.task_id}`}, "open task →") : h("span", {class: "muted"}, "none yet"))},
      {title: "Waits for", cell: (e) => e.condition.join(", ")},
      {title: "Duration", cell: (e) => duration(span(e.start_at, e.end_at))},
    ], view.entries, (e) => ({dataset: {entry: e.name}})));
  }

  function openTask(name) {
    const entry = view.entries.find((e) => e.name === name);
    if (entry && entry.task_id) window.location.hash = `#/task/${entry.task_id}`;
  }

  function install(fresh) {
    view = fresh;
    document.title = `${view.work.name} · LitePipeline`;
    tasks.clear();
    for (const t of view.tasks) tasks.set(t.task_id, t);
    renderHead();
    dag = drawDag(view.layout, view.entries, down, openTask, "The work's applications and their states");
    graph.replaceChildren(dag.svg);
    if (down && view.layout.width < graph.clientWidth * 1.25) dag.svg.classList.add("fit");
    renderList();
  }

  const redrawList = coalesce(renderList, 150);

  function onEvent(event) {
    for (const t of event.tasks) tasks.set(t.task_id, {...tasks.get(t.task_id), ...t});
    if (event.work) {
      Object.assign(view.work, event.work);
      for (const e of event.work.entries) {
        const entry = view.entries.find((x) => x.name === e.name);
        if (entry) Object.assign(entry, e);
      }
      renderHead();
    }
    const finished = view.work.stage === "finished";
    for (const entry of view.entries) {
      const task = entry.task_id ? tasks.get(entry.task_id) : null;
      entry.state = entryState(entry, task, finished);
      if (task) Object.assign(entry, {start_at: task.start_at, end_at: task.end_at, message: task.message});
      if (dag) dag.update(entry);
    }
    redrawList();
  }

  const live = liveState({
    fetch: () => get("/ui/api/work", {work_id: workId, direction: down ? "down" : "right"}),
    install, apply: onEvent, failed: (error) => main.replaceChildren(crumbs, errorBox(error)),
  });
  return events({topic: "work", work_id: workId}, {onReady: live.load, onEvent: live.onEvent});
}
