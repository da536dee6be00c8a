// Services: applications kept running — each one's state, its task, restarts, how it
// last ended and when it starts again; a switch to enable or disable it.
import {events, get, send} from "../api.js";
import {badge, coalesce, errorBox, h, shortTime, table} from "../ui.js";

function state(s) {
  if (s.stage && s.stage !== "finished") return badge(s.stage === "running" ? "running" : s.stage === "stopping" ? "stopping" : "waiting");
  if (!s.enable) return h("span", {class: "muted"}, "not running");
  if (s.next_start_at) return badge("retrying");
  return s.stage ? badge({success: "success", fail: "failed", kill: "killed"}[s.status] || "failed") : badge("waiting");
}

export async function mount(main) {
  const body = h("div", {});
  const notice = h("div", {"aria-live": "polite"});
  main.replaceChildren(h("h1", {}, "Services"), notice, body);

  async function toggle(s) {
    const word = s.enable ? "Disable" : "Enable";
    try {
      await send("PUT", "/service/update", {service_id: s.service_id, enable: !s.enable});
      notice.replaceChildren(h("p", {class: "ok"}, `✓ ${word}d ${s.name}`));
    } catch (error) {
      notice.replaceChildren(errorBox(error));
    }
    await load();
  }

  let mine = new Set();   // the services' task ids: their changes redraw the list

  async function load() {
    let data;
    try {
      data = await get("/service/list", {limit: 1000});
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    mine = new Set(data.services.map((s) => s.task_id).filter(Boolean));
    body.replaceChildren(data.services.length
      ? table([
        {title: "Name", cell: (s) => s.name},
        {title: "Enabled", cell: (s) => h("span", {class: `badge ${s.enable ? "st-success" : "st-not-run"}`},
          s.enable ? "✓ enabled" : "✗ disabled")},
        {title: "State", cell: state},
        {title: "Task", cell: (s) => (s.task_id ? h("a", {href: `#/task/${s.task_id}`}, "open task →") : h("span", {class: "muted"}, "none"))},
        {title: "Restarts", cell: (s) => String(s.restarts ?? 0)},
        {title: "Last exit", cell: (s) => s.last_exit || h("span", {class: "muted"}, "—")},
        {title: "Next start", cell: (s) => (s.next_start_at ? shortTime(s.next_start_at) : h("span", {class: "muted"}, "—"))},
        {title: "", cell: (s) => h("button", {type: "button", class: "toggle", onclick: () => toggle(s)},
          s.enable ? "Disable" : "Enable")},
      ], data.services, (s) => ({dataset: {service: s.service_id}}))
      : h("p", {class: "empty"}, "No service yet. Create one with ",
        h("code", {}, "litepipeline service create -n NAME -a APP_ID"), "."));
  }

  // a service's task starting or ending is a committed round of the task list's topic
  const refresh = coalesce(load, 500);
  const onEvent = (e) => {
    if (e.created.length || e.tasks.some((t) => mine.has(t.task_id))) refresh();
  };
  return events({topic: "tasks"}, {onReady: load, onEvent});
}
