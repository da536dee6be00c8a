// Applications: the list, an upload form, and a form to start a task of one.
import {send} from "../api.js";
import {errorBox, h, pagedList, shortTime} from "../ui.js";
import {uploadForm} from "../uploadform.js";

const UPLOAD = {formId: "upload-form", prefix: "up", title: "Upload an application",
  fileLabel: "Tarball (.tar.gz)", route: "/app/create", idKey: "app_id"};

function runForm(app) {
  const status = h("div", {class: "form-status", "aria-live": "polite"});
  const form = h("form", {class: "run-form"},
    h("label", {}, "Task name", h("input", {name: "task_name", required: true, maxlength: "255", value: app.name})),
    h("label", {}, "Input (JSON object)", h("textarea", {name: "input", rows: "3", spellcheck: "false"}, "{}")),
    h("div", {class: "form-actions"}, h("button", {type: "submit", class: "primary"}, "Create task")),
    status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let input;
    try {
      input = JSON.parse(form.elements.input.value || "{}");
      if (typeof input !== "object" || input === null || Array.isArray(input)) throw new Error("not an object");
    } catch (error) {
      status.replaceChildren(errorBox({message: `the input must be a JSON object (${error.message})`}));
      return;
    }
    try {
      const answer = await send("POST", "/task/create",
        {app_id: app.application_id, task_name: form.elements.task_name.value, input_data: input});
      window.location.hash = `#/task/${answer.task_id}`;
    } catch (error) {
      status.replaceChildren(errorBox(error));
    }
  });
  return form;
}

export async function mount(main) {
  const list = pagedList({route: "/app/list", key: "apps", columns: [
    {title: "Name", cell: (a) => h("a", {href: `#/app/${encodeURIComponent(a.application_id)}`}, h("b", {}, a.name))},
    {title: "Application id", cell: (a) => h("code", {title: a.application_id}, a.application_id)},
    {title: "Version (sha1)", cell: (a) => h("code", {title: a.sha1}, a.sha1.slice(0, 10))},
    {title: "Updated", cell: (a) => shortTime(a.update_at)},
    {title: "Description", cell: (a) => a.description || ""},
    {title: "", class: "row-actions", cell: (a) => [
      h("details", {class: "run"}, h("summary", {class: "button"}, "▶ Run…"), runForm(a)),
      h("a", {class: "button quiet", href: `/app/download?app_id=${encodeURIComponent(a.application_id)}`,
        download: `${a.application_id}.tar.gz`}, "⇩ Download"),
      h("a", {class: "button quiet", href: `#/tasks?app_id=${encodeURIComponent(a.application_id)}`}, "Tasks")]},
  ], rowAttrs: (a) => ({dataset: {app: a.application_id}}), empty: "No application yet: upload one above."});

  main.replaceChildren(h("h1", {}, "Applications"), uploadForm(UPLOAD, list.load), h("h2", {}, "Applications"), list.el);
  await list.load();
  return null;
}
