// One workflow: its DAG of applications (entries as boxes, conditions as edges), a form
// to create a work of it, and its works (live).
import {events, get, send} from "../api.js";
import {drawDag} from "../dag.js";
import {badge, coalesce, duration, errorBox, h, shortTime, span, table} from "../ui.js";

const NARROW = 700;

export async function mount(main, [workflowId]) {
  if (!workflowId) {
    window.location.hash = "#/workflows";
    return null;
  }
  const down = window.innerWidth < NARROW;
  const crumbs = h("p", {class: "crumbs"}, h("a", {href: "#/workflows"}, "← Workflows"));
  let view;
  try {
    view = await get("/ui/api/workflow", {workflow_id: workflowId, direction: down ? "down" : "right"});
  } catch (error) {
    main.replaceChildren(crumbs, errorBox(error));
    return null;
  }
  const wf = view.workflow;
  let apps = {};
  try {
    const answer = await get("/app/list", {limit: 1000});
    apps = Object.fromEntries(answer.apps.map((a) => [a.application_id, a.name]));
  } catch (error) { /* the boxes still show the ids */ }
  document.title = `${wf.name} · LitePipeline`;
  const graph = h("div", {class: "dag-wrap"});
  const works = h("div", {});
  const status = h("div", {class: "form-status", "aria-live": "polite"});
  const form = h("form", {class: "card form-grid new-work", id: "work-form"},
    h("h2", {}, "Run it: create a work"),
    h("label", {for: "work-name"}, "Name"), h("input", {id: "work-name", name: "name", required: true, maxlength: 255}),
    h("label", {for: "work-input"}, "Input (JSON object)"),
    h("textarea", {id: "work-input", name: "input", rows: 3, spellcheck: "false"}, "{}"),
    h("div", {class: "form-actions"}, h("button", {type: "submit", class: "primary", disabled: !wf.enable},
      "▶ Create work"), wf.enable ? null : h("span", {class: "muted"}, " the workflow is disabled")),
    status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let input;
    try {
      input = JSON.parse(form.elements.input.value || "{}");
      if (input === null || typeof input !== "object" || Array.isArray(input)) throw new Error("not an object");
    } catch (error) {
      status.replaceChildren(errorBox({message: "The input must be a JSON object, e.g. {\"key\": 1}."}));
      return;
    }
    try {
      const answer = await send("POST", "/work/create", {workflow_id: workflowId, name: form.elements.name.value, input_data: input});
      window.location.hash = `#/work/${answer.work_id}`;
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });

  const events_ = view.events.length
    ? view.events.map((ev) => [h("dt", {}, `On ${ev.outcome}`), h("dd", {}, apps[ev.app_id] || h("code", {}, ev.app_id))])
    : null;
  main.replaceChildren(crumbs,
    h("h1", {}, wf.name, " ", h("span", {class: `badge ${wf.enable ? "st-success" : "st-not-run"}`},
      wf.enable ? "✓ enabled" : "✗ disabled")),
    h("dl", {class: "facts"},
      h("dt", {}, "Workflow id"), h("dd", {}, h("code", {}, wf.workflow_id)),
      wf.description ? [h("dt", {}, "Description"), h("dd", {}, wf.description)] : null,
      h("dt", {}, "Updated"), h("dd", {}, shortTime(wf.update_at)),
      events_),
    h("section", {}, h("h2", {}, "Applications"), graph),
    form,
    h("section", {}, h("h2", {}, "Works"), works));

  const dag = drawDag(view.layout, view.entries.map((e) => ({...e, state: "waiting"})), down,
    () => {}, "The workflow's applications and their conditions");
  for (const g of dag.svg.querySelectorAll("g.node")) {
    const entry = view.entries.find((x) => x.name === g.dataset.name);
    g.querySelector("text.detail").textContent = apps[entry.app_id] || `app ${entry.app_id.slice(0, 8)}`;
    g.removeAttribute("tabindex");
    g.removeAttribute("role");
  }
  graph.replaceChildren(dag.svg);
  if (down && view.layout.width < graph.clientWidth * 1.25) dag.svg.classList.add("fit");

  async function loadWorks() {
    let data;
    try {
      data = await get("/work/list", {workflow_id: workflowId, limit: 20});
    } catch (error) {
      works.replaceChildren(errorBox(error));
      return;
    }
    works.replaceChildren(...(data.works.length
      ? [table([
        {title: "Name", cell: (w) => h("a", {href: `#/work/${w.work_id}`}, w.name)},
        {title: "State", cell: (w) => badge(stateOf(w))},
        {title: "Created", cell: (w) => shortTime(w.create_at)},
        {title: "Duration", cell: (w) => duration(span(w.start_at, w.end_at))},
      ], data.works, (w) => ({dataset: {work: w.work_id}})),
      data.total > data.works.length
        ? h("p", {}, h("a", {href: `#/works?workflow_id=${encodeURIComponent(workflowId)}`}, `All ${data.total} works →`))
        : ""]
      : [h("p", {class: "empty"}, "No work of this workflow yet.")]));
  }

  const reload = coalesce(loadWorks, 300);
  return events({topic: "work"}, {onReady: loadWorks, onEvent: (e) => {
    if (e.work && e.work.workflow_id === workflowId) reload();
  }});
}

export function stateOf(work) {
  if (work.stage === "finished") return {success: "success", fail: "failed", kill: "killed"}[work.status] || "failed";
  return {running: "running", stopping: "stopping"}[work.stage] || "waiting";
}
