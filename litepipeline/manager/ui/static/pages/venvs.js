// Venvs: the list and an upload form (a venv-pack tarball shared by applications).
import {get, upload} from "../api.js";
import {errorBox, h, shortTime, table} from "../ui.js";

const PAGE = 50;

function createForm(onDone) {
  const status = h("p", {class: "form-status", "aria-live": "polite"});
  const progress = h("progress", {max: "1", value: "0", hidden: true});
  const form = h("form", {class: "card form-grid", id: "venv-form"},
    h("h2", {}, "Upload a venv"),
    h("label", {for: "venv-file"}, "venv-pack tarball"),
    h("input", {id: "venv-file", name: "up_file", type: "file", accept: ".gz,.tgz,application/gzip", required: true}),
    h("label", {for: "venv-name"}, "Name"),
    h("input", {id: "venv-name", name: "name", required: true, maxlength: "255"}),
    h("label", {for: "venv-desc"}, "Description"),
    h("input", {id: "venv-desc", name: "description", maxlength: "10000"}),
    h("div", {class: "form-actions"}, h("button", {type: "submit", class: "primary"}, "Upload"), progress),
    status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData();
    data.append("name", form.elements.name.value);   // the small fields first: the file is streamed
    data.append("description", form.elements.description.value);
    data.append("up_file", form.elements.up_file.files[0]);
    progress.hidden = false;
    status.replaceChildren("Uploading…");
    try {
      const answer = await upload("/venv/create", data, (f) => { progress.value = f; });
      status.replaceChildren(h("span", {class: "ok"}, "✓ Uploaded: ", h("code", {}, answer.venv_id)));
      form.reset();
      await onDone();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      progress.hidden = true;
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
      data = await get("/venv/list", {offset, limit: PAGE});
    } catch (error) {
      list.replaceChildren(errorBox(error));
      return;
    }
    const pager = h("div", {class: "pager"},
      h("button", {type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); }}, "← Newer"),
      h("span", {class: "muted"}, data.total ? `${offset + 1}–${offset + data.venvs.length} of ${data.total}` : ""),
      h("button", {type: "button", disabled: offset + data.venvs.length >= data.total, onclick: () => { offset += PAGE; load(); }}, "Older →"));
    list.replaceChildren(
      data.venvs.length ? table([
        {title: "Name", cell: (v) => h("a", {href: `#/venv/${encodeURIComponent(v.venv_id)}`}, h("b", {}, v.name))},
        {title: "Venv id", cell: (v) => h("code", {title: v.venv_id}, v.venv_id)},
        {title: "Active version (sha1)", cell: (v) => h("code", {title: v.sha1}, v.sha1.slice(0, 10))},
        {title: "Updated", cell: (v) => shortTime(v.update_at)},
        {title: "Description", cell: (v) => v.description || ""},
      ], data.venvs, (v) => ({dataset: {venv: v.venv_id}}))
        : h("p", {class: "empty"}, "No venv yet: upload one above."),
      pager);
  }

  main.replaceChildren(h("h1", {}, "Venvs"), createForm(load), h("h2", {}, "Venvs"), list);
  await load();
  return null;
}
