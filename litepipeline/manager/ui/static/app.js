// The application shell: a registry of pages and a #fragment router.
// A new page is one module in pages/ exporting mount(main, args, query) -> cleanup,
// plus one line below.
import {send, session} from "./api.js";
import {errorBox, h} from "./ui.js";

const PAGES = [
  {name: "cluster", title: "Cluster", module: "./pages/cluster.js"},
  {name: "apps", title: "Applications", module: "./pages/apps.js"},
  {name: "app", title: "Application", module: "./pages/app.js", hidden: true, under: "apps"},
  {name: "venvs", title: "Venvs", module: "./pages/venvs.js"},
  {name: "venv", title: "Venv", module: "./pages/venv.js", hidden: true, under: "venvs"},
  {name: "tasks", title: "Tasks", module: "./pages/tasks.js"},
  {name: "task", title: "Task", module: "./pages/task.js", hidden: true, under: "tasks"},
  {name: "workflows", title: "Workflows", module: "./pages/workflows.js"},
  {name: "workflow", title: "Workflow", module: "./pages/workflow.js", hidden: true, under: "workflows"},
  {name: "works", title: "Works", module: "./pages/works.js"},
  {name: "work", title: "Work", module: "./pages/work.js", hidden: true, under: "works"},
  {name: "schedules", title: "Schedules", module: "./pages/schedules.js"},
  {name: "services", title: "Services", module: "./pages/services.js"},
];

let cleanup = null;

function parseHash() {
  const hash = window.location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  const [name, ...args] = path.split("/").filter(Boolean).map(decodeURIComponent);
  return {name: name || "cluster", args, query: new URLSearchParams(query)};
}

function renderNav(current) {
  const nav = document.getElementById("nav");
  nav.replaceChildren(...PAGES.filter((p) => !p.hidden).map((p) =>
    h("a", {href: `#/${p.name}`, "aria-current": p.name === current ? "page" : null}, p.title)));
  const active = nav.querySelector("[aria-current]");   // a narrow screen scrolls the bar to it
  if (active && nav.scrollWidth > nav.clientWidth) nav.scrollLeft = active.offsetLeft - nav.offsetLeft - nav.clientWidth / 3;
}

async function route() {
  const {name, args, query} = parseHash();
  const page = PAGES.find((p) => p.name === name) || PAGES[0];
  renderNav(page.under || page.name);
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  const main = document.getElementById("main");
  main.replaceChildren(h("p", {class: "muted"}, "Loading…"));
  document.title = `${page.title} · LitePipeline`;
  try {
    const module = await import(page.module);
    cleanup = await module.mount(main, args, query) || null;
  } catch (error) {
    main.replaceChildren(errorBox(error));
  }
}

async function start() {
  await session();
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      await send("POST", "/ui/logout");
      window.location.assign("/ui/login");
    });
  }
  window.addEventListener("hashchange", route);
  await route();
}

start().catch((error) => document.getElementById("main").replaceChildren(errorBox(error)));
