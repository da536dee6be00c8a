// Schedules: what each one creates, when (cron and zone), its next fires and last fire,
// and a switch to enable or disable it.
import {get, send} from "../api.js";
import {errorBox, h, shortTime, table} from "../ui.js";

function when(s) {
  return h("span", {}, s.cron ? h("code", {}, s.cron) : "—", " ", h("span", {class: "muted"}, s.timezone || ""));
}

function source(s, names) {
  const href = s.source === "workflow" ? `#/workflow/${s.source_id}` : "#/apps";
  return h("span", {}, h("span", {class: "chip"}, s.source), " ",
    h("a", {href, title: s.source_id}, names[s.source_id] || s.source_id.slice(0, 8)));
}

function lastFire(s) {
  if (!s.last_fire_at) return h("span", {class: "muted"}, "never");
  const target = s.last_target_id;
  const href = target ? (s.source === "workflow" ? `#/work/${target}` : `#/task/${target}`) : null;
  return h("span", {}, shortTime(s.last_fire_at), href ? [" ", h("a", {href, title: "what it created"}, "→")] : null);
}

function nextFires(s) {
  const fires = s.next_fire_at || [];
  if (!s.enable) return h("span", {class: "muted"}, "disabled");
  if (!fires.length) return h("span", {class: "muted"}, "none");
  return h("ul", {class: "fires"}, fires.slice(0, 3).map((t) => h("li", {}, shortTime(t))));
}

export async function mount(main) {
  const body = h("div", {});
  const notice = h("div", {"aria-live": "polite"});
  main.replaceChildren(h("h1", {}, "Schedules"), notice, body);
  const names = {};   // application and workflow ids -> names
  try {
    const [apps, workflows] = await Promise.all([get("/app/list", {limit: 1000}), get("/workflow/list", {limit: 1000})]);
    for (const a of apps.apps) names[a.application_id] = a.name;
    for (const w of workflows.workflows) names[w.workflow_id] = w.name;
  } catch (error) { /* ids instead */ }

  async function toggle(s) {
    const word = s.enable ? "Disable" : "Enable";
    try {
      await send("PUT", "/schedule/update", {schedule_id: s.schedule_id, enable: !s.enable});
      notice.replaceChildren(h("p", {class: "ok"}, `✓ ${word}d ${s.schedule_name}`));
    } catch (error) {
      notice.replaceChildren(errorBox(error));
    }
    await load();
  }

  async function load() {
    let data;
    try {
      data = await get("/ui/api/schedules", {limit: 200});
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    body.replaceChildren(data.schedules.length
      ? table([
        {title: "Name", cell: (s) => s.schedule_name},
        {title: "Enabled", cell: (s) => h("span", {class: `badge ${s.enable ? "st-success" : "st-not-run"}`},
          s.enable ? "✓ enabled" : "✗ disabled")},
        {title: "Creates", cell: (s) => source(s, names)},
        {title: "When", cell: when},
        {title: "Next fires", cell: nextFires},
        {title: "Last fire", cell: lastFire},
        {title: "", cell: (s) => h("button", {type: "button", class: "toggle", onclick: () => toggle(s)},
          s.enable ? "Disable" : "Enable")},
      ], data.schedules, (s) => ({dataset: {schedule: s.schedule_id}}))
      : h("p", {class: "empty"}, "No schedule yet. Create one with ",
        h("code", {}, "litepipeline schedule create -n NAME -a APP_ID -c '0 3 * * *'"), "."));
  }

  await load();
  return null;
}
