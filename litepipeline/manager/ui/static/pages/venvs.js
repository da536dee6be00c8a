// Venvs: the list and an upload form (a venv-pack tarball shared by applications).
import {h, pagedList, shortTime} from "../ui.js";
import {uploadForm} from "../uploadform.js";

const UPLOAD = {formId: "venv-form", prefix: "venv", title: "Upload a venv",
  fileLabel: "venv-pack tarball", route: "/venv/create", idKey: "venv_id"};

export async function mount(main) {
  const list = pagedList({route: "/venv/list", key: "venvs", columns: [
    {title: "Name", cell: (v) => h("a", {href: `#/venv/${encodeURIComponent(v.venv_id)}`}, h("b", {}, v.name))},
    {title: "Venv id", cell: (v) => h("code", {title: v.venv_id}, v.venv_id)},
    {title: "Active version (sha1)", cell: (v) => h("code", {title: v.sha1}, v.sha1.slice(0, 10))},
    {title: "Updated", cell: (v) => shortTime(v.update_at)},
    {title: "Description", cell: (v) => v.description || ""},
  ], rowAttrs: (v) => ({dataset: {venv: v.venv_id}}), empty: "No venv yet: upload one above."});

  main.replaceChildren(h("h1", {}, "Venvs"), uploadForm(UPLOAD, list.load), h("h2", {}, "Venvs"), list.el);
  await list.load();
  return null;
}
