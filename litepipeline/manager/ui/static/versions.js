// Versions of an application or a venv (the same history API for both): the table with
// activate (a rollback), download and delete, and the upload of a new version.
import {get, send, url} from "./api.js";
import {errorBox, h, shortTime, table} from "./ui.js";
import {onUpload} from "./uploadform.js";

/** What differs between the two kinds. */
export const KINDS = {
  app: {idKey: "app_id", base: "/app", rows: "app_histories", update: "/app/update", noun: "application"},
  venv: {idKey: "venv_id", base: "/venv", rows: "venv_histories", update: "/venv/update", noun: "venv"},
};

/** A form uploading a new version (active at once), multipart as the create forms. */
export function newVersionForm(kind, ownerId, onDone) {
  const k = KINDS[kind];
  const status = h("p", {class: "form-status", "aria-live": "polite"});
  const progress = h("progress", {max: "1", value: "0", hidden: true});
  const form = h("form", {class: "card form-grid", id: "version-form"},
    h("h2", {}, "Upload a new version (active at once)"),
    h("label", {for: "version-file"}, "Tarball (.tar.gz)"),
    h("input", {id: "version-file", name: "up_file", type: "file", accept: ".gz,.tgz,application/gzip", required: true}),
    h("div", {class: "form-actions"}, h("button", {type: "submit", class: "primary"}, "Upload version"), progress),
    status);
  onUpload(form, status, progress, k.update, () => {
    const data = new FormData();
    data.append(k.idKey, ownerId);   // the small field first: the manager streams the file
    data.append("up_file", form.elements.up_file.files[0]);
    return data;
  }, () => "✓ Uploaded: the new version is active", onDone);
  return form;
}

/**
 * The versions table of one owner, newest first; `active` is the active version's sha1.
 * Changes report in `notice` and call onChange (which reloads the page's facts too).
 */
export function versionsTable(kind, ownerId, histories, active, notice, onChange) {
  const k = KINDS[kind];
  async function act(what, history) {
    try {
      if (what === "activate") {
        await send("PUT", `${k.base}/history/activate`, {[k.idKey]: ownerId, history_id: history.history_id});
        notice.replaceChildren(h("p", {class: "ok"}, `✓ Version ${history.history_id} is now active`));
      } else {
        await send("DELETE", `${k.base}/history/delete`, undefined, {[k.idKey]: ownerId, history_id: history.history_id});
        notice.replaceChildren(h("p", {class: "ok"}, `✓ Deleted version ${history.history_id}`));
      }
    } catch (error) {
      notice.replaceChildren(errorBox(error));   // a 409 says why, in the manager's words
      return;
    }
    await onChange();
  }
  if (!histories.length) return h("p", {class: "empty"}, "No version.");
  return table([
    {title: "History id", cell: (v) => h("b", {}, String(v.history_id))},
    {title: "State", cell: (v) => (v.sha1 === active
      ? h("span", {class: "badge st-success"}, h("span", {class: "icon", "aria-hidden": "true"}, "★"), "active")
      : h("span", {class: "muted"}, "stored"))},
    {title: "SHA-1", cell: (v) => h("code", {title: v.sha1}, v.sha1.slice(0, 10))},
    {title: "Uploaded", cell: (v) => shortTime(v.create_at)},
    {title: "", class: "row-actions", cell: (v) => [
      v.sha1 === active ? null
        : h("button", {type: "button", class: "activate", onclick: () => act("activate", v)}, "↺ Activate"),
      h("a", {class: "button quiet", href: url(`${k.base}/download`, {[k.idKey]: ownerId, sha1: v.sha1}),
        download: `${ownerId}-${v.history_id}.tar.gz`}, "⇩ Download"),
      h("button", {type: "button", class: "quiet delete", onclick: () => act("delete", v)}, "✗ Delete")]},
  ], histories, (v) => ({dataset: {history: String(v.history_id), active: v.sha1 === active ? "true" : "false"}}));
}

/** Every version of one owner (the manager caps a page; versions are few). */
export async function histories(kind, ownerId) {
  const k = KINDS[kind];
  const data = await get(`${k.base}/history/list`, {[k.idKey]: ownerId, limit: 1000});
  return data[k.rows];
}
