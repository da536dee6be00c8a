// One application: its facts, its configuration.json, its versions (activate, download,
// delete) and the upload of a new version.
import {get} from "../api.js";
import {errorBox, h, shortTime} from "../ui.js";
import {histories, newVersionForm, versionsTable} from "../versions.js";

export async function mount(main, [appId]) {
  const crumbs = h("p", {class: "crumbs"}, h("a", {href: "#/apps"}, "← Applications"));
  const notice = h("div", {"aria-live": "polite", id: "notice"});
  const facts = h("div", {});
  const versions = h("div", {id: "versions"});
  const config = h("pre", {class: "config", id: "config", tabindex: "0", "aria-label": "configuration.json"});

  async function load() {
    let info, rows;
    try {
      [info, rows] = await Promise.all([get("/app/info", {app_id: appId, config: "true"}), histories("app", appId)]);
    } catch (error) {
      facts.replaceChildren(errorBox(error));
      return;
    }
    const app = info.app_info;
    facts.replaceChildren(
      h("h1", {}, app.name),
      h("dl", {class: "facts"},
        h("dt", {}, "Application id"), h("dd", {}, h("code", {}, app.application_id)),
        app.description ? [h("dt", {}, "Description"), h("dd", {}, app.description)] : null,
        h("dt", {}, "Active version"), h("dd", {id: "active-sha1"}, h("code", {}, app.sha1)),
        h("dt", {}, "Created"), h("dd", {}, shortTime(app.create_at)),
        h("dt", {}, "Updated"), h("dd", {}, shortTime(app.update_at)),
        h("dt", {}, "Tasks"), h("dd", {}, h("a", {href: `#/tasks?app_id=${encodeURIComponent(appId)}`}, "its tasks →"))));
    config.textContent = JSON.stringify(info.app_config, null, 2);
    versions.replaceChildren(versionsTable("app", appId, rows, app.sha1, notice, load));
  }

  main.replaceChildren(crumbs, facts, notice,
    h("section", {}, h("h2", {}, "Versions"), versions),
    newVersionForm("app", appId, load),
    h("section", {}, h("h2", {}, "configuration.json (active version)"), config));
  await load();
  return null;
}
