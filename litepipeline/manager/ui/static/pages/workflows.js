// Workflows: each DAG of applications, whether it is enabled, and a link to its page.
import {get} from "../api.js";
import {errorBox, h, shortTime, table} from "../ui.js";

export async function mount(main) {
  const body = h("div", {});
  main.replaceChildren(h("h1", {}, "Workflows"), body);
  let data;
  try {
    data = await get("/workflow/list", {limit: 1000});
  } catch (error) {
    body.replaceChildren(errorBox(error));
    return null;
  }
  const entries = (w) => ((w.configuration || {}).applications || []).length;
  body.replaceChildren(data.workflows.length
    ? table([
      {title: "Name", cell: (w) => h("a", {href: `#/workflow/${w.workflow_id}`}, w.name)},
      {title: "Enabled", cell: (w) => (w.enable ? "✓ enabled" : "✗ disabled")},
      {title: "Applications", cell: (w) => String(entries(w))},
      {title: "Description", cell: (w) => w.description || ""},
      {title: "Created", cell: (w) => shortTime(w.create_at)},
      {title: "Works", cell: (w) => h("a", {href: `#/works?workflow_id=${encodeURIComponent(w.workflow_id)}`}, "works →")},
    ], data.workflows, (w) => ({dataset: {workflow: w.workflow_id}}))
    : h("p", {class: "empty"}, "No workflow yet. Create one with ",
      h("code", {}, "litepipeline workflow create -n NAME -c FILE.json"), "."));
  return null;
}
