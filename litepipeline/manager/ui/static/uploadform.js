// Upload forms: the applications' and venvs' (a tarball, a name, a description), and what
// every upload form does on submit (progress, the answer, the error).
import {upload} from "./api.js";
import {errorBox, h} from "./ui.js";

/**
 * {formId, prefix, title, fileLabel, route, idKey} name the form's parts and where it posts;
 * onDone() runs after an upload succeeded.
 */
export function uploadForm({formId, prefix, title, fileLabel, route, idKey}, onDone) {
  const status = h("p", {class: "form-status", "aria-live": "polite"});
  const progress = h("progress", {max: "1", value: "0", hidden: true});
  const form = h("form", {class: "card form-grid", id: formId},
    h("h2", {}, title),
    h("label", {for: `${prefix}-file`}, fileLabel),
    h("input", {id: `${prefix}-file`, name: "up_file", type: "file", accept: ".gz,.tgz,application/gzip", required: true}),
    h("label", {for: `${prefix}-name`}, "Name"),
    h("input", {id: `${prefix}-name`, name: "name", required: true, maxlength: "255"}),
    h("label", {for: `${prefix}-desc`}, "Description"),
    h("input", {id: `${prefix}-desc`, name: "description", maxlength: "10000"}),
    h("div", {class: "form-actions"}, h("button", {type: "submit", class: "primary"}, "Upload"), progress),
    status);
  onUpload(form, status, progress, route, () => {
    const data = new FormData();
    // the manager streams the file: the small fields go first
    data.append("name", form.elements.name.value);
    data.append("description", form.elements.description.value);
    data.append("up_file", form.elements.up_file.files[0]);
    return data;
  }, (answer) => ["✓ Uploaded: ", h("code", {}, answer[idKey])], onDone);
  return form;
}

/**
 * On submit, post fields() to route with a progress bar; the answer's said(answer) or the
 * error shows in status; the form is reset and onDone() awaited after a success.
 */
export function onUpload(form, status, progress, route, fields, said, onDone) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = fields();
    progress.hidden = false;
    status.replaceChildren("Uploading…");
    try {
      const answer = await upload(route, data, (f) => { progress.value = f; });
      status.replaceChildren(h("span", {class: "ok"}, said(answer)));
      form.reset();
      await onDone();
    } catch (error) {
      status.replaceChildren(errorBox(error));
    } finally {
      progress.hidden = true;
    }
  });
}
