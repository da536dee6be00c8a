// Cluster: the manager, each node's slots (busy/free), labels, last heartbeat, version.
import {events, get} from "../api.js";
import {coalesce, errorBox, h, shortId, table} from "../ui.js";

function slots(node) {
  const total = node.slots_total || 0;
  const busy = node.slots_busy || 0;
  const cells = [];
  for (let i = 0; i < total; i++) cells.push(h("span", {class: i < busy ? "slot busy" : "slot free"}));
  return h("div", {class: "slots"},
    h("span", {class: "slot-cells", "aria-hidden": "true"}, cells),
    h("span", {}, `${busy} busy · ${total - busy} free`));
}

function labels(node) {
  const entries = Object.entries(node.labels || {});
  if (!entries.length) return h("span", {class: "muted"}, "none");
  return entries.map(([k, v]) => h("span", {class: "chip"}, `${k}=${v}`));
}

function heartbeat(node) {
  const s = node.last_heartbeat_seconds;
  if (s === null || s === undefined) return "";
  return `${s < 1 ? "<1" : Math.round(s)} s ago`;
}

export async function mount(main) {
  const body = h("div", {});
  main.replaceChildren(h("h1", {}, "Cluster"), body);

  async function load() {
    let data;
    try {
      data = await get("/ui/api/cluster");
    } catch (error) {
      body.replaceChildren(errorBox(error));
      return;
    }
    const nodes = data.nodes;
    const total = nodes.reduce((n, x) => n + (x.slots_total || 0), 0);
    const busy = nodes.reduce((n, x) => n + (x.slots_busy || 0), 0);
    body.replaceChildren(
      h("div", {class: "stats"},
        h("div", {class: "stat"}, h("b", {}, String(nodes.length)), h("span", {}, nodes.length === 1 ? "node" : "nodes")),
        h("div", {class: "stat"}, h("b", {}, `${busy} / ${total}`), h("span", {}, "slots busy")),
        h("div", {class: "stat"}, h("b", {}, String(data.scheduler.unfinished_tasks ?? "")), h("span", {}, "unfinished tasks")),
        h("div", {class: "stat"}, h("b", {}, data.version), h("span", {}, "manager version"))),
      nodes.length
        ? table([
          {title: "Node", cell: (n) => [h("code", {title: n.node_id}, shortId(n.node_id)), " ",
            h("span", {class: "muted"}, `${n.http_host}:${n.http_port}${n.platform ? ` · ${n.platform}` : ""}`)]},
          {title: "Slots", cell: slots},
          {title: "Labels", cell: labels},
          {title: "Last heartbeat", cell: heartbeat},
          {title: "Version", cell: (n) => n.version || ""},
        ], nodes, (n) => ({dataset: {node: n.node_id}}))
        : h("p", {class: "empty"}, "No node is registered. Start one with ", h("code", {}, "litenode -c CONFIG.yml"), "."));
  }

  const refresh = coalesce(load, 300);
  return events({topic: "cluster"}, {onReady: load, onEvent: refresh});
}
