// Venvs: the list and an upload form (a venv-pack tarball shared by applications).
import {get} from "../api.js";
import {errorBox, h, pager, shortTime, table} from "../ui.js";
import {uploadForm} from "../uploadform.js";

const UPLOAD = {formId: "venv-form", prefix: "venv", title: "Upload a venv",
  fileLabel: "venv-pack tarball", route: "/venv/create", idKey: "venv_id"};

const PAGE = 50;

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
    list.replaceChildren(
      data.venvs.length ? table([
        {title: "Name", cell: (v) => h("a", {href: `#/venv/${encodeURIComponent(v.venv_id)}`}, h("b", {}, v.name))},
        {title: "Venv id", cell: (v) => h("code", {title: v.venv_id}, v.venv_id)},
        {title: "Active version (sha1)", cell: (v) => h("code", {title: v.sha1}, v.sha1.slice(0, 10))},
        {title: "Updated", cell: (v) => shortTime(v.update_at)},
        {title: "Description", cell: (v) => v.description || ""},
      ], data.venvs, (v) => ({dataset: {venv: v.venv_id}}))
        : h("p", {class: "empty"}, "No venv yet: upload one above."),
      pager(offset, data.venvs.length, data.total, PAGE, (at) => { offset = at; load(); }));
  }

  main.replaceChildren(h("h1", {}, "Venvs"), uploadForm(UPLOAD, load), h("h2", {}, "Venvs"), list);
  await load();
  return null;
}
