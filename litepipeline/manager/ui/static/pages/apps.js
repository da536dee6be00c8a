// Applications: the list, an upload form, and a form to start a task of one.
import {get, send, upload} from "../api.js";
import {errorBox, h, shortId, shortTime, table} from "../ui.js";

const PAGE = 50;

function uploadForm(onDone) {
  const status = h("p", {class: "form-status", "aria-live": "polite"});
  const progress = h("progress", {max: "1", value: "0", hidden: true});
  const form = h("form", {class: "card form-grid", id: "upload-form"},
    h("h2", {}, "Upload an application"),
    h("label", {for: "up-file"}, "Tarball (.tar.gz)"),
    h("input", {id: "up-file", name: "up_file", type: "file", accept: ".gz,.tgz,application/gzip", required: true}),
    h("label", {for: "up-name"}, "Name"),
    h("input", {id: "up-name", name: "name", required: true, maxlength: "255"}),
    h("label", {for: "up-desc"}, "Description"),
    h("input", {id: "up-desc", name: "description", maxlength: "10000"}),
    h("div", {class: "form-actions"}, h("button", {type: "submit", class: "primary"}, "Upload"), progress),
    status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData();
    // the manager streams the file: the small fields go first
    data.append("name", form.elements.name.value);
    data.append("description", form.elements.description.value);
    data.append("up_file", form.elements.up_file.files[0]);
    progress.hidden = false;
    status.replaceChildren("Uploading…");
    try {
      const answer = await upload("/app/create", data, (f) => { progress.value = f; });
      status.replaceChildren(h("span", {class: "ok"}, "✓ Uploaded: ", h("code", {}, answer.app_id)));
      form.reset();
      onDone();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      progress.hidden = true;
    }
  });
  return form;
}

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
  const list = h("div", {});
  let offset = 0;

  async function load() {
    let data;
    try {
      data = await get("/app/list", {offset, limit: PAGE});
    } catch (error) {
      list.replaceChildren(errorBox(error));
      return;
    }
    const pager = h("div", {class: "pager"},
      h("button", {type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); }}, "← Newer"),
      h("span", {class: "muted"}, data.total ? `${offset + 1}–${offset + data.apps.length} of ${data.total}` : ""),
      h("button", {type: "button", disabled: offset + data.apps.length >= data.total, onclick: () => { offset += PAGE; load(); }}, "Older →"));
    list.replaceChildren(
      data.apps.length ? table([
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
      ], data.apps, (a) => ({dataset: {app: a.application_id}}))
        : h("p", {class: "empty"}, "No application yet: upload one above."),
      pager);
  }

  main.replaceChildren(h("h1", {}, "Applications"), uploadForm(load), h("h2", {}, "Applications"), list);
  await load();
  return null;
}
