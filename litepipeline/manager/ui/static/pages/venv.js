// One venv: its facts, its versions (activate, download, delete) and the upload of a new version.
import {get} from "../api.js";
import {errorBox, h, shortTime} from "../ui.js";
import {histories, newVersionForm, versionsTable} from "../versions.js";

export async function mount(main, [venvId]) {
  const crumbs = h("p", {class: "crumbs"}, h("a", {href: "#/venvs"}, "← Venvs"));
  const notice = h("div", {"aria-live": "polite", id: "notice"});
  const facts = h("div", {});
  const versions = h("div", {id: "versions"});

  async function load() {
    let info, rows;
    try {
      [info, rows] = await Promise.all([get("/venv/info", {venv_id: venvId}), histories("venv", venvId)]);
    } catch (error) {
      facts.replaceChildren(errorBox(error));
      return;
    }
    const venv = info.venv_info;
    facts.replaceChildren(
      h("h1", {}, venv.name),
      h("dl", {class: "facts"},
        h("dt", {}, "Venv id"), h("dd", {}, h("code", {}, venv.venv_id)),
        venv.description ? [h("dt", {}, "Description"), h("dd", {}, venv.description)] : null,
        h("dt", {}, "Active version"), h("dd", {id: "active-sha1"}, h("code", {}, venv.sha1)),
        h("dt", {}, "Created"), h("dd", {}, shortTime(venv.create_at)),
        h("dt", {}, "Updated"), h("dd", {}, shortTime(venv.update_at))));
    versions.replaceChildren(versionsTable("venv", venvId, rows, venv.sha1, notice, load));
  }

  main.replaceChildren(crumbs, facts, notice,
    h("section", {}, h("h2", {}, "Versions"), versions),
    newVersionForm("venv", venvId, load));
  await load();
  return null;
}
