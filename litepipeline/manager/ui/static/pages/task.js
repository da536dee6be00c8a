// One task: its DAG (live), the attempts on a timeline, each action's log following
// live, and stop / recover / rerun / workspace download.
import {ApiError, events, follow, get, liveState, send} from "../api.js";
import {drawDag} from "../dag.js";
import {act, badge, coalesce, duration, errorBox, h, shortTime, span} from "../ui.js";
import {drawTimeline, nodeLabel} from "../timeline.js";

const NARROW = 700;   // px: below this the DAG is drawn top to bottom

export async function mount(main, [taskId]) {
  if (!taskId) {
    window.location.hash = "#/tasks";
    return null;
  }
  const down = window.innerWidth < NARROW;
  let view = null;
  let dag = null;
  const actions = new Map();
  const attempts = new Map();
  const addresses = {};
  let selected = null;
  let logAbort = null;
  let logLive = false;

  const head = h("div", {class: "task-head"});
  const notice = h("div", {"aria-live": "polite"});
  const graph = h("div", {class: "dag-wrap"});
  const timeline = h("div", {});
  const logTitle = h("span", {}, "Choose an action in the graph.");
  const logState = h("span", {class: "muted log-state"});
  const logText = h("pre", {class: "log", tabindex: "0", "aria-label": "Action output"});
  const picker = h("select", {id: "log-action", "aria-label": "Action whose log to show"});
  picker.addEventListener("change", () => openLog(picker.value));

  main.replaceChildren(
    h("p", {class: "crumbs"}, h("a", {href: "#/tasks"}, "← Tasks")),
    head, notice,
    h("section", {}, h("h2", {}, "Graph"), legend(), graph),
    h("section", {}, h("h2", {}, "Attempts"), timeline),
    h("section", {class: "log-section"},
      h("h2", {}, "Log"),
      h("div", {class: "log-bar"}, picker, logTitle, logState),
      logText));

  function legend() {
    return h("p", {class: "legend"}, ["waiting", "retrying", "running", "success", "failed", "killed", "not-run"].map(badge),
      h("span", {class: "badge generated-key"}, "┅ generated at run time"));
  }

  function controls(task) {
    const out = [];
    if (task.stage !== "finished") {
      const signal = h("select", {"aria-label": "Signal", class: "signal"},
        h("option", {value: "-15"}, "SIGTERM"), h("option", {value: "-9"}, "SIGKILL"));
      out.push(h("span", {class: "stop-group"}, h("button", {type: "button", class: "danger", id: "stop",
        onclick: () => act(notice, "Stop", () => send("PUT", "/task/stop", {task_id: taskId, signal: Number(signal.value)}))},
      "■ Stop"), signal));
    } else {
      if (task.status === "fail" || task.status === "kill") {
        out.push(h("button", {type: "button", id: "recover",
          onclick: () => act(notice, "Recover", () => send("PUT", "/task/recover", {task_id: taskId}))}, "↻ Recover"));
      }
      out.push(h("button", {type: "button", id: "rerun", onclick: () => act(notice, "Rerun", async () => {
        const answer = await send("POST", "/task/rerun", {task_id: taskId});
        window.location.hash = `#/task/${answer.task_id}`;
      })}, "⟳ Rerun as new task"));
    }
    out.push(h("a", {class: "button quiet", id: "workspace", download: `${taskId}.tar.gz`,
      href: `/task/workspace?task_id=${encodeURIComponent(taskId)}`}, "⇩ Workspaces"));
    return h("div", {class: "controls"}, out);
  }

  function renderHead() {
    const t = view.task;
    head.replaceChildren(
      h("h1", {}, t.task_name, " ", badge(t.state)),
      h("dl", {class: "facts"},
        h("dt", {}, "Task id"), h("dd", {}, h("code", {}, t.task_id)),
        h("dt", {}, "Application"), h("dd", {}, h("code", {}, t.application_id)),
        t.work_id ? [h("dt", {}, "Work"), h("dd", {}, h("a", {href: `#/work/${t.work_id}`, id: "work-link"}, "its work →"))] : null,
        h("dt", {}, "Created"), h("dd", {}, shortTime(t.create_at)),
        h("dt", {}, "Duration"), h("dd", {}, t.start_at ? duration(span(t.start_at, t.end_at)) : "not started"),
        t.message ? [h("dt", {}, "Message"), h("dd", {class: "message"}, t.message)] : null),
      controls(t));
  }

  function renderGraph() {
    if (!view.layout) {
      graph.replaceChildren(h("p", {class: "empty"}, `${view.actions.length} actions: too many to draw.`));
      dag = null;
      return;
    }
    dag = drawDag(view.layout, view.actions, down, openLog);
    graph.replaceChildren(dag.svg);
    if (down && view.layout.width < graph.clientWidth * 1.25) dag.svg.classList.add("fit");
    else graph.scrollLeft = (view.layout.width - graph.clientWidth) / 2;   // rows are centred
    if (selected) dag.select(selected);
  }

  function renderTimeline() {
    timeline.replaceChildren(drawTimeline([...attempts.values()], nodeLabel(addresses)));
  }

  function renderPicker() {
    picker.replaceChildren(h("option", {value: ""}, "— action —"),
      ...view.actions.map((a) => h("option", {value: a.name, selected: a.name === selected}, a.name)));
  }

  function install(fresh) {
    view = fresh;
    document.title = `${view.task.task_name} · LitePipeline`;
    actions.clear();
    for (const a of view.actions) {
      actions.set(a.name, a);
      if (a.node_id && a.node) addresses[a.node_id] = a.node;
    }
    attempts.clear();
    for (const a of view.attempts) {
      attempts.set(a.attempt_id, a);
      if (a.node_id && a.node) addresses[a.node_id] = a.node;
    }
    renderHead();
    renderGraph();
    renderTimeline();
    renderPicker();
    if (selected && !logLive) openLog(selected);
  }

  const redrawTimeline = coalesce(renderTimeline, 100);

  function onEvent(event) {
    let needsLoad = false;
    for (const change of event.actions) {
      const known = actions.get(change.name);
      if (!known || change.new) { needsLoad = true; continue; }   // generated: lay the DAG out again
      const wasRunning = known.state === "running";
      Object.assign(known, change);
      if (dag) dag.update(known);
      if (change.name === selected && !logLive && change.state === "running" && !wasRunning) openLog(selected);
    }
    for (const change of event.attempts) attempts.set(change.attempt_id, {...attempts.get(change.attempt_id), ...change});
    if (event.attempts.length) redrawTimeline();
    if (event.task) {
      const ended = event.task.stage === "finished" && view.task.stage !== "finished";
      Object.assign(view.task, event.task);
      if (ended) needsLoad = true;   // final states, and "not run" for what never started
      else renderHead();
    }
    if (needsLoad) reload();
  }

  async function openLog(name) {
    if (logAbort) logAbort.abort();
    selected = name || null;
    if (dag) dag.select(selected);
    picker.value = selected || "";
    logText.textContent = "";
    logState.textContent = "";
    if (!selected) { logTitle.textContent = "Choose an action in the graph."; return; }
    const action = actions.get(selected);
    logTitle.replaceChildren(h("b", {}, selected), " ", action ? badge(action.state) : "");
    const abort = logAbort = new AbortController();
    logLive = true;
    logState.textContent = action && action.state === "running" ? "following…" : "";
    try {
      await follow("/task/log", {task_id: taskId, name: selected, follow: 1}, (text) => {
        const atEnd = logText.scrollTop + logText.clientHeight >= logText.scrollHeight - 4;
        logText.append(text);
        if (atEnd) logText.scrollTop = logText.scrollHeight;
      }, abort.signal);
      if (abort === logAbort) logState.textContent = "— end of log —";
    } catch (error) {
      if (abort.signal.aborted) return;
      if (error instanceof ApiError && error.result === "ActionNotStarted") {
        logState.textContent = "no log yet: it starts when the action runs";
      } else {
        logState.replaceChildren(errorBox(error));
      }
    } finally {
      if (abort === logAbort) logLive = false;
    }
  }

  const live = liveState({
    fetch: () => get("/ui/api/task", {task_id: taskId, direction: down ? "down" : "right"}),
    install, apply: onEvent,
    failed: (error) => main.replaceChildren(h("p", {class: "crumbs"}, h("a", {href: "#/tasks"}, "← Tasks")),
                                            errorBox(error)),
  });
  const reload = coalesce(live.load, 150);
  const close = events({topic: "task", task_id: taskId}, {onReady: live.load, onEvent: live.onEvent});
  return () => {
    close();
    if (logAbort) logAbort.abort();
  };
}
