// The dashboard: a view of the JSON API (the same routes curl uses) and its live feed, GET /events.
// No framework and no build step; every value from the API goes into the page as text, never as HTML.
"use strict";

const ROLE = document.querySelector('meta[name="role"]').content;
const CSRF = document.querySelector('meta[name="csrf"]').content;
const TERMINAL = new Set(["Completed", "Failed", "Canceled"]);
const app = document.getElementById("app");

// -- small helpers -------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// The DOM's append and replaceChildren write null as the text "null": these leave out what is not there
// (null, undefined, false), so `cond ? h(...) : null` means "nothing" everywhere, as it does inside h().
function present(children) {
  return children.flat().filter((child) => child !== null && child !== undefined && child !== false);
}

function fill(el, ...children) {
  el.replaceChildren(...present(children));
  return el;
}

function addTo(el, ...children) {
  el.append(...present(children));
  return el;
}

async function api(path, options = {}) {
  const headers = { "X-CSRF-Token": CSRF };
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    credentials: "same-origin",
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
  });
  if (response.status === 401) {
    location.href = `/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new Error("signed out");
  }
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error(body?.detail || response.statusText);
  return body;
}

const short = (text, n = 12) => (text ? (text.length > n ? `${text.slice(0, n)}…` : text) : "—");
const digest = (value) => (value ? short(value.replace("sha256:", ""), 12) : "—");
const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
function duration(job) {
  if (!job.started_at) return "—";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  const seconds = Math.max(0, Math.round((end - new Date(job.started_at)) / 1000));
  return seconds < 120 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}
// A value as a cell shows it: a fraction to 4 significant digits, nothing as a dash.
const shown = (v) =>
  v === undefined || v === null ? "—" : typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : v;
const badge = (status) => h("span", { class: `status ${status}`, "data-status": status }, status);
// How a run is named everywhere (the list, its page's heading, chat: service/core/schemas.py run_title): the id
// the scripts print and Azure ML studio shows (the service's own until the backend gives one), then its name.
const runId = (job) => job.backend_run_id || job.id;
const runTitle = (job) => (job.name ? `${runId(job)} "${job.name}"` : runId(job));
const modelLink = (mv) =>
  mv ? h("a", { href: `/ui/models/${encodeURIComponent(mv.name)}` }, `${mv.name} v${mv.version}`) : "—";
function failure(error) {
  return h("p", { class: "error", role: "alert" }, String(error.message || error));
}

// One EventSource per page; the browser resumes it with Last-Event-ID by itself. A `reset` (events this
// page missed were dropped, or its id was unknown) reloads the page; a stream closed for good (the
// session ended: 401, or the service failed) says so and offers to sign in again.
let listening = false; // this page has its stream (route() opens one for pages that do not ask)

// The header's dot says in words whether this page is getting live updates.
function liveState(state) {
  const dot = document.getElementById("live");
  dot.classList.toggle("on", state === "live");
  dot.dataset.state = state;
  dot.querySelector(".live-text").textContent =
    { live: "live", reconnecting: "reconnecting…", stopped: "not live" }[state] || state;
  dot.title = {
    live: "live: this page changes as runs and models do",
    reconnecting: "reconnecting: changes will show once the stream is back",
    stopped: "not live: reload the page to see changes",
  }[state];
}

function listen(url, handlers) {
  listening = true;
  const source = new EventSource(url);
  liveState("reconnecting");
  source.onopen = () => liveState("live");
  source.onerror = () => {
    liveState(source.readyState === EventSource.CLOSED ? "stopped" : "reconnecting");
    if (source.readyState === EventSource.CLOSED) stopped();
  };
  source.addEventListener("reset", () => location.reload());
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handler(JSON.parse(event.data), event));
  }
  window.addEventListener("pagehide", () => source.close());
  return source;
}

function stopped() {
  if (document.getElementById("stopped")) return;
  const next = encodeURIComponent(location.pathname + location.search);
  document
    .querySelector("header")
    .after(
      h(
        "p",
        { id: "stopped", class: "error", role: "alert" },
        "Live updates stopped: your session ended or the service is unreachable. ",
        h("a", { href: `/ui/login?next=${next}` }, "Sign in again"),
        " or reload the page.",
      ),
    );
}

// -- charts, drawn as SVG by the page ------------------------------------------------------
const MAX_POINTS = 1000; // a chart 300 units wide shows no more; a metric may have hundreds of thousands
const MAX_DOTS = 200;

// [min, max] of one coordinate, in a loop: Math.min(...values) overflows the call stack past ~100k values.
function extent(points, index) {
  let low = Infinity;
  let high = -Infinity;
  for (const point of points) {
    if (point[index] < low) low = point[index];
    if (point[index] > high) high = point[index];
  }
  return [low, high];
}

// At most `most` points: each bucket of neighbours keeps its lowest and highest, so spikes stay visible.
function downsample(points, most) {
  if (points.length <= most) return points;
  const size = Math.ceil(points.length / (most / 2));
  const kept = [];
  for (let start = 0; start < points.length; start += size) {
    let low = points[start];
    let high = points[start];
    for (let i = start + 1; i < Math.min(points.length, start + size); i++) {
      if (points[i][1] < low[1]) low = points[i];
      if (points[i][1] > high[1]) high = points[i];
    }
    if (low === high) kept.push(low);
    else kept.push(...(low[0] <= high[0] ? [low, high] : [high, low]));
  }
  return kept;
}

// Run one part of a page; if it fails, say so in its place and let the rest of the page go on.
async function part(where, fn) {
  try {
    await fn();
  } catch (error) {
    addTo(where, failure(error));
  }
}
const SVG = "http://www.w3.org/2000/svg";

// An SVG image named for screen readers, and add(tag, attrs, text) to draw in it.
function svgFrame(cls, viewBox, label) {
  const svg = document.createElementNS(SVG, "svg");
  for (const [key, value] of Object.entries({ class: cls, viewBox, role: "img", "aria-label": label })) {
    svg.setAttribute(key, value);
  }
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  return { svg, add };
}

// Points' x and y mapped into a box (left, width; top, height), a flat series drawn across its middle.
function scales(points, [left, width], [top, height]) {
  const [x0, x1] = extent(points, 0);
  const [y0, y1] = extent(points, 1);
  return {
    X: (x) => left + (x1 === x0 ? width / 2 : ((x - x0) / (x1 - x0)) * width),
    Y: (y) => top + height - (y1 === y0 ? height / 2 : ((y - y0) / (y1 - y0)) * height),
    y0,
    y1,
  };
}

function chart(points, { best = null, label = "" } = {}) {
  const { svg, add } = svgFrame("chart", "0 0 300 120", label);
  if (!points.length) return svg;
  points = downsample(points, MAX_POINTS);
  const { X, Y, y0, y1 } = scales(points, [30, 260], [10, 90]);
  add("line", { class: "axis", x1: 30, y1: 100, x2: 290, y2: 100 });
  add("text", { x: 0, y: 14 }, Number(y1).toPrecision(3));
  add("text", { x: 0, y: 104 }, Number(y0).toPrecision(3));
  add("polyline", { class: "line", points: points.map(([x, y]) => `${X(x)},${Y(y)}`).join(" ") });
  for (const [x, y] of points.length <= MAX_DOTS ? points : []) {
    add("circle", { class: x === best ? "dot best" : "dot", cx: X(x), cy: Y(y), r: 3 }).append(
      Object.assign(document.createElementNS(SVG, "title"), { textContent: `${x}: ${y}` }),
    );
  }
  return svg;
}

// Several series on common axes, one colour each (series-0…9 in app.css), for the compare page.
function overlay(series, label) {
  const { svg, add } = svgFrame("chart", "0 0 300 120", label);
  const drawn = series.map((one) => ({ ...one, points: downsample(one.points, MAX_POINTS) }));
  const all = drawn.flatMap((one) => one.points);
  if (!all.length) return svg;
  const { X, Y, y0, y1 } = scales(all, [30, 260], [10, 90]);
  add("line", { class: "axis", x1: 30, y1: 100, x2: 290, y2: 100 });
  add("text", { x: 0, y: 14 }, Number(y1).toPrecision(3));
  add("text", { x: 0, y: 104 }, Number(y0).toPrecision(3));
  for (const one of drawn) {
    const points = one.points.map(([x, y]) => `${X(x)},${Y(y)}`);
    if (points.length === 1)
      add("circle", {
        class: `dot ${one.cls}`,
        "data-run": one.label,
        cx: X(one.points[0][0]),
        cy: Y(one.points[0][1]),
        r: 3,
      });
    else add("polyline", { class: `line ${one.cls}`, "data-run": one.label, points: points.join(" ") });
  }
  return svg;
}

// Runs as dots, one quantity across, another up (a parameter against a metric); each dot names its run.
function scatter(dots, { x, y }) {
  const { svg, add } = svgFrame("chart scatter", "0 0 300 140", `${y} against ${x}, ${dots.length} runs`);
  if (!dots.length) return svg;
  const points = dots.map((dot) => [dot.x, dot.y]);
  const { X, Y, y0, y1 } = scales(points, [40, 250], [10, 90]);
  const [x0, x1] = extent(points, 0);
  add("line", { class: "axis", x1: 30, y1: 100, x2: 290, y2: 100 });
  add("text", { x: 0, y: 14 }, Number(y1).toPrecision(3));
  add("text", { x: 0, y: 104 }, Number(y0).toPrecision(3));
  add("text", { x: 40, y: 116 }, Number(x0).toPrecision(3));
  add("text", { x: 290, y: 116, "text-anchor": "end" }, Number(x1).toPrecision(3));
  add("text", { x: 165, y: 134, "text-anchor": "middle" }, x);
  for (const dot of dots) {
    add("circle", { class: `dot ${dot.cls}`, "data-run": dot.label, cx: X(dot.x), cy: Y(dot.y), r: 4 }).append(
      Object.assign(document.createElementNS(SVG, "title"), {
        textContent: `${dot.label}: ${x} ${dot.x}, ${y} ${dot.y}`,
      }),
    );
  }
  return svg;
}

// Parallel coordinates: an upright axis a quantity (each scaled to its own range), a line a run across them.
const MAX_AXES = 8;
function parallel(lines, names) {
  const { svg, add } = svgFrame(
    "chart parallel",
    "0 0 320 150",
    `${lines.length} runs across ${names.length} quantities`,
  );
  const left = 20;
  const step = names.length > 1 ? 280 / (names.length - 1) : 0;
  const ranges = names.map((name) => {
    const values = lines.map((line) => line.values[name]).filter((v) => v !== undefined);
    return [Math.min(...values), Math.max(...values)];
  });
  const Y = (i, v) => {
    const [low, high] = ranges[i];
    return 110 - (high === low ? 50 : ((v - low) / (high - low)) * 100);
  };
  names.forEach((name, i) => {
    const x = left + i * step;
    add("line", { class: "axis", x1: x, y1: 10, x2: x, y2: 110 });
    add("text", { x, y: 124, "text-anchor": "middle", class: "axis-name" }, name.replace(/^(params|metrics)\./, ""));
    add("text", { x, y: 8, "text-anchor": "middle" }, Number(ranges[i][1]).toPrecision(3));
    add("text", { x, y: 138, "text-anchor": "middle" }, Number(ranges[i][0]).toPrecision(3));
  });
  for (const line of lines) {
    const points = names
      .map((name, i) => (line.values[name] === undefined ? null : `${left + i * step},${Y(i, line.values[name])}`))
      .filter(Boolean);
    if (points.length > 1)
      add("polyline", { class: `line ${line.cls}`, "data-run": line.label, points: points.join(" ") }).append(
        Object.assign(document.createElementNS(SVG, "title"), { textContent: line.label }),
      );
  }
  return svg;
}

// A run's numeric quantities by name: params.<name> (estimators, args that read as numbers) and metrics.<name>.
function quantities(job) {
  const found = {};
  const given = { estimators: job.params?.estimators, ...(job.params?.args || {}) };
  for (const [name, value] of Object.entries(given)) {
    const number = typeof value === "number" ? value : Number(String(value ?? "").trim() || Number.NaN);
    if (Number.isFinite(number)) found[`params.${name}`] = number;
  }
  for (const [name, value] of Object.entries(job.metrics || {}))
    if (typeof value === "number" && Number.isFinite(value)) found[`metrics.${name}`] = value;
  return found;
}

// -- runs ----------------------------------------------------------------------------------
const MAX_COMPARED = 10;
const selected = new Set(); // the runs ticked on the list, to compare

// Metric columns the user picked for the runs list, remembered in this browser.
const PICKS = "aml.runs.metrics";
const PARAM_PICKS = "aml.runs.params"; // parameter columns (estimators, any args key), remembered apart

// The columns picked under `key` in this browser, else `fallback` (nothing stored, or edited by hand).
function pickedColumns(key, fallback) {
  try {
    const stored = JSON.parse(localStorage.getItem(key));
    if (Array.isArray(stored)) return stored.filter((name) => typeof name === "string");
  } catch {
    // unreadable (edited by hand, or storage off): the fallback
  }
  return fallback;
}

// A <details> of checkboxes, one a column; a change is remembered under `key` and redraws the list.
function drawPicker(box, { title, kind, empty, names, picked, key, redraw }) {
  fill(
    box,
    h("summary", {}, `${title} (${picked.length})`),
    h(
      "fieldset",
      {},
      h("legend", { class: "visually-hidden" }, `${title} to show`),
      names.length ? null : h("p", { class: "hint" }, empty),
      names.map((name) =>
        h(
          "label",
          {},
          h("input", {
            type: "checkbox",
            name: kind,
            value: name,
            checked: picked.includes(name),
            onchange: (e) => {
              const now = e.target.checked ? [...picked, name] : picked.filter((m) => m !== name);
              try {
                localStorage.setItem(key, JSON.stringify(now));
              } catch {
                // storage off: the pick lasts for this page
              }
              const open = box.open;
              redraw(now);
              box.open = open;
              box.querySelector(`input[value="${CSS.escape(name)}"]`)?.focus();
            },
          }),
          name,
        ),
      ),
    ),
  );
}

const paramOf = (job, name) =>
  name === "estimators" ? (job.params?.estimators ?? job.params?.args?.estimators) : job.params?.args?.[name];

function runRow(job, metrics, paramNames = []) {
  const tick = h("input", {
    type: "checkbox",
    class: "pick",
    "aria-label": `compare ${job.backend_run_id || job.id}`,
    checked: selected.has(job.id),
    onchange: (e) => {
      if (e.target.checked) selected.add(job.id);
      else selected.delete(job.id);
      document.dispatchEvent(new Event("picked"));
    },
  });
  return h(
    "tr",
    { "data-id": job.id },
    h("td", {}, tick),
    // The id people hold (the one the scripts print and Azure ML studio shows) in full, linking to the run;
    // the service's own id until the backend has given one, and in the title.
    h(
      "td",
      { class: "mono backend-id" },
      h("a", { href: `/ui/runs/${encodeURIComponent(job.id)}`, title: `service id ${job.id}` }, runId(job)),
      job.name ? h("span", { class: "run-name" }, ` "${job.name}"`) : null,
    ),
    h("td", {}, badge(job.status)),
    metrics.map((name) => h("td", { class: "metric", "data-metric": name }, shown(job.metrics?.[name]))),
    paramNames.map((name) => {
      const value = paramOf(job, name);
      if (value === undefined || value === null) return h("td", { class: "param", "data-param": name }, "—");
      const only = new URLSearchParams(location.search);
      only.set(`params.${name}`, String(value));
      only.delete("cursor");
      return h(
        "td",
        { class: "param", "data-param": name },
        h("a", { href: `?${only.toString()}`, title: `only runs with ${name}=${value}` }, String(value)),
      );
    }),
    h(
      "td",
      { title: when(job.started_at || job.created_at) },
      new Date(job.started_at || job.created_at).toLocaleString(undefined, {
        month: "short",
        day: "numeric",
        hour: "2-digit",
        minute: "2-digit",
      }),
    ),
    h("td", {}, duration(job)),
    h("td", {}, modelLink(job.model_version)),
    h("td", {}, job.experiment),
    h("td", {}, job.script),
    h("td", {}, job.created_by || "api"),
    h(
      "td",
      { class: "mono" },
      job.data_version
        ? h("a", { href: `/ui/?data_version=${encodeURIComponent(job.data_version)}` }, digest(job.data_version))
        : "—",
    ),
  );
}

// A column header that sorts the list by its key (the URL holds the sort, so a sorted list can be shared).
function sortHeader(label, key, params) {
  const current = params.get("sort") || "created";
  const ascending = params.get("order") === "asc";
  const active = current === key;
  const next = new URLSearchParams(params);
  next.delete("cursor");
  next.set("sort", key);
  next.set("order", active && !ascending ? "asc" : "desc");
  const arrow = active ? (ascending ? " ▲" : " ▼") : "";
  return h(
    "th",
    { scope: "col", "aria-sort": active ? (ascending ? "ascending" : "descending") : null },
    h(
      "a",
      {
        href: `?${next.toString()}`,
        class: "sort",
        title: `sort by ${label}${active && !ascending ? ", lowest first" : ", highest first"}`,
      },
      label,
      arrow,
    ),
  );
}

async function runsPage() {
  const params = new URLSearchParams(location.search);
  const status = h(
    "select",
    { name: "status", "aria-label": "status" },
    ["", "Queued", "Preparing", "Running", "Finalizing", "Completed", "Failed", "Canceled"].map((s) =>
      h("option", { value: s, selected: s === (params.get("status") || "") }, s || "any status"),
    ),
  );
  const experiment = h("input", {
    name: "experiment",
    placeholder: "experiment",
    value: params.get("experiment") || "",
    "aria-label": "experiment",
  });
  const search = h("input", {
    name: "q",
    id: "search",
    type: "search",
    placeholder: "run id, prefix, script, experiment…",
    value: params.get("q") || "",
    "aria-label": "search runs",
  });
  const filters = h(
    "form",
    {
      class: "filters",
      onsubmit: (e) => {
        e.preventDefault();
        apply();
      },
    },
    h("label", {}, "Find", search),
    h("label", {}, "Status", status),
    h("label", {}, "Experiment", experiment),
    h("button", { type: "submit" }, "Filter"),
  );
  function apply() {
    const next = new URLSearchParams();
    if (search.value.trim()) next.set("q", search.value.trim());
    if (status.value) next.set("status", status.value);
    if (experiment.value.trim()) next.set("experiment", experiment.value.trim());
    if (params.get("data_version")) next.set("data_version", params.get("data_version"));
    location.search = next.toString();
  }
  status.addEventListener("change", apply);
  const body = h("tbody");
  const head = h("thead");
  const table = h("div", { class: "table-wrap" }, h("table", { id: "runs" }, head, body));
  const pager = h("div", { class: "pager" });
  const title = params.get("data_version") ? `Runs that read ${digest(params.get("data_version"))}` : "Runs";
  const compare = h(
    "button",
    {
      type: "button",
      id: "compare",
      disabled: true,
      onclick: () => {
        location.href = `/ui/compare?ids=${[...selected].map(encodeURIComponent).join(",")}`;
      },
    },
    "Compare selected",
  );
  const picked = h(
    "span",
    { class: "hint", id: "picked", "aria-live": "polite" },
    `tick 2 to ${MAX_COMPARED} runs to compare`,
  );
  document.addEventListener("picked", () => {
    compare.disabled = selected.size < 2 || selected.size > MAX_COMPARED;
    picked.textContent =
      selected.size > MAX_COMPARED ? `${selected.size} ticked: at most ${MAX_COMPARED}` : `${selected.size} ticked`;
  });
  const columns = h("details", { class: "columns", id: "columns" }, h("summary", {}, "Metric columns"));
  const paramColumns = h("details", { class: "columns", id: "param-columns" }, h("summary", {}, "Parameter columns"));
  const paramFilters = [...params.entries()].filter(([key]) => key.startsWith("params."));
  const filtered = paramFilters.length
    ? h(
        "p",
        { id: "param-filters" },
        "Only runs with ",
        paramFilters.map(([key, value], index) => {
          const without = new URLSearchParams(params);
          without.delete(key);
          without.delete("cursor");
          return [
            index ? ", " : "",
            h("span", { class: "mono" }, `${key.slice(7)}=${value}`),
            " ",
            h("a", { href: `?${without.toString()}`, "aria-label": `remove the ${key.slice(7)} filter` }, "×"),
          ];
        }),
      )
    : null;
  fill(
    app,
    h("h1", {}, title),
    filters,
    filtered,
    h("div", { class: "actions" }, compare, " ", picked, columns, paramColumns),
    table,
    pager,
  );
  let page;
  try {
    page = await api(`/runs?${params.toString()}`);
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  let jobs = page.items;
  let metrics = pickedColumns(PICKS, ["accuracy"]);
  let paramNames = pickedColumns(PARAM_PICKS, []);
  const paramSorted = (params.get("sort") || "").startsWith("params.") ? params.get("sort").slice(7) : null;
  function knownParams() {
    const names = new Set([...paramNames, ...(paramSorted ? [paramSorted] : [])]);
    for (const job of jobs) {
      if (job.params?.estimators !== null && job.params?.estimators !== undefined) names.add("estimators");
      for (const name of Object.keys(job.params?.args || {})) names.add(name);
    }
    return [...names].sort();
  }
  const shownParams = () =>
    paramSorted && !paramNames.includes(paramSorted) ? [...paramNames, paramSorted] : paramNames;
  // The metrics these runs logged, and the picked ones (a picked metric stays offered when no run here has it).
  const sortedBy = (params.get("sort") || "").startsWith("metrics.") ? params.get("sort").slice(8) : null;
  function known() {
    const names = new Set([...metrics, ...(sortedBy ? [sortedBy] : [])]);
    for (const job of jobs)
      for (const [name, value] of Object.entries(job.metrics || {})) {
        if (typeof value === "number") names.add(name);
      }
    return [...names].sort();
  }
  const shownMetrics = () => (sortedBy && !metrics.includes(sortedBy) ? [...metrics, sortedBy] : metrics);
  function draw() {
    const shown = shownMetrics();
    fill(
      head,
      h(
        "tr",
        {},
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Compare")),
        h("th", { scope: "col" }, "Run"),
        h("th", { scope: "col" }, "Status"),
        shown.map((name) => sortHeader(name, `metrics.${name}`, params)),
        shownParams().map((name) => sortHeader(name, `params.${name}`, params)),
        sortHeader("Started", "started", params),
        sortHeader("Duration", "duration", params),
        ["Model", "Experiment", "Script", "Started by", "Data"].map((t) => h("th", { scope: "col" }, t)),
      ),
    );
    fill(body, ...jobs.map((job) => runRow(job, shown, shownParams())));
    if (!jobs.length) {
      const empty = params.get("q") || paramFilters.length ? "No run matches." : "No runs yet.";
      const span = 10 + shown.length + shownParams().length;
      addTo(body, h("tr", {}, h("td", { colspan: span, class: "hint" }, empty)));
    }
    drawPicker(paramColumns, {
      title: "Parameter columns",
      kind: "param",
      empty: "No run here has parameters.",
      names: knownParams(),
      picked: paramNames,
      key: PARAM_PICKS,
      redraw: (now) => {
        paramNames = now;
        draw();
      },
    });
    drawPicker(columns, {
      title: "Metric columns",
      kind: "metric",
      empty: "No run here logged a number yet.",
      names: known(),
      picked: metrics,
      key: PICKS,
      redraw: (now) => {
        metrics = now;
        draw();
      },
    });
  }
  draw();
  const sorted = params.get("sort") && params.get("sort") !== "created";
  if (page.next_cursor) {
    const more = new URLSearchParams(params);
    more.set("cursor", page.next_cursor);
    addTo(
      pager,
      h("a", { href: `?${more.toString()}` }, sorted || params.get("order") ? "Next page →" : "Older runs →"),
    );
  }
  if (params.get("cursor")) {
    const first = new URLSearchParams(params);
    first.delete("cursor");
    pager.prepend(h("a", { href: `?${first.toString()}` }, sorted ? "← First page" : "← Newest"), " ");
  }
  const q = params.get("q");
  const found = (job) =>
    !q ||
    job.id.startsWith(q) ||
    (job.backend_run_id || "").startsWith(q) ||
    [job.experiment, job.script, job.created_by, job.name].includes(q);
  const matches = (job) =>
    found(job) &&
    !job.archived &&
    [...params.entries()].every(
      ([key, value]) => !key.startsWith("params.") || String(paramOf(job, key.slice(7)) ?? "") === value,
    ) &&
    (!params.get("status") || job.status === params.get("status")) &&
    (!params.get("experiment") || job.experiment === params.get("experiment")) &&
    (!params.get("data_version") || job.data_version === params.get("data_version"));
  // Live: a run on the list is redrawn where it is; a new one is put on top when the list is newest first.
  const newestFirst = !sorted && params.get("order") !== "asc" && !params.get("cursor");
  listen("/events", {
    run: (job) => {
      const index = jobs.findIndex((j) => j.id === job.id);
      if (index >= 0) {
        jobs[index] = job;
        body
          .querySelector(`tr[data-id="${CSS.escape(job.id)}"]`)
          ?.replaceWith(runRow(job, shownMetrics(), shownParams()));
        return;
      }
      if (!newestFirst || !matches(job)) return;
      jobs = [job, ...jobs];
      const open = columns.open;
      draw();
      columns.open = open;
    },
  });
}

// Last, lowest, highest and how many values of each numeric metric, under a run's charts.
function metricsTable(numeric) {
  const number = (v) => (Number.isInteger(v) ? String(v) : Number(v).toPrecision(4));
  return h(
    "table",
    { id: "metrics-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Metric", "Last", "Min", "Max", "Count"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      ...numeric.map(([name, values]) => {
        let low = Infinity;
        let high = -Infinity;
        for (const v of values) {
          if (v < low) low = v;
          if (v > high) high = v;
        }
        return h(
          "tr",
          { "data-metric": name },
          h("th", { scope: "row" }, name),
          h("td", {}, number(values[values.length - 1])),
          h("td", {}, number(low)),
          h("td", {}, number(high)),
          h("td", {}, values.length),
        );
      }),
    ),
  );
}

// A run's name, notes and tags, and archiving it: shown to everyone, edited by writers (PATCH /runs/{id}).
function aboutRun(job, changed) {
  const tags = Object.entries(job.tags || {});
  const shownParts = [
    job.archived ? h("p", { class: "hint", id: "archived-note" }, "Archived: hidden from the runs list.") : null,
    job.description ? h("p", { id: "run-description" }, job.description) : null,
    tags.length
      ? h("p", { id: "run-tags" }, ...tags.map(([k, v]) => h("span", { class: "tag mono" }, `${k}=${v}`, " ")))
      : null,
  ];
  if (ROLE !== "full") return shownParts;
  const said = h("p", { id: "about-outcome", role: "status" });
  const name = h("input", { id: "run-name", name: "name", maxlength: "255", value: job.name || "" });
  const notes = h("textarea", { id: "run-notes", name: "description", maxlength: "2000", rows: "2" });
  notes.value = job.description || "";
  const tagText = h("input", {
    id: "run-tag-text",
    name: "tags",
    placeholder: "key=value, key=value",
    value: tags.map(([k, v]) => `${k}=${v}`).join(", "),
  });
  async function save(fields) {
    try {
      changed(await api(`/runs/${encodeURIComponent(job.id)}`, { method: "PATCH", json: fields }));
    } catch (error) {
      fill(said, failure(error));
    }
  }
  function submit(event) {
    event.preventDefault();
    const parsed = {};
    for (const part of tagText.value.split(",")) {
      const [key, ...rest] = part.split("=");
      if (key.trim()) parsed[key.trim()] = rest.join("=").trim();
    }
    save({ name: name.value, description: notes.value, tags: parsed });
  }
  const form = h(
    "details",
    { id: "about-edit" },
    h("summary", {}, "Name, notes and tags"),
    h(
      "form",
      { onsubmit: submit, class: "about-form" },
      h("label", {}, "Name ", name),
      h("label", {}, "Notes ", notes),
      h("label", {}, "Tags ", tagText),
      h("button", { type: "submit", id: "save-about" }, "Save"),
      " ",
      h(
        "button",
        { type: "button", id: "archive", onclick: () => save({ archived: !job.archived }) },
        job.archived ? "Restore to the list" : "Archive",
      ),
    ),
    said,
  );
  return [...shownParts, form];
}

async function runPage(id) {
  let job;
  try {
    job = await api(`/runs/${encodeURIComponent(id)}`);
  } catch (error) {
    fill(app, h("h1", {}, "Run"), failure(error));
    return;
  }
  const facts = h("dl", { class: "facts" });
  const charts = h("div", { class: "charts", id: "charts" });
  const summary = h("div", { class: "table-wrap", id: "metrics-summary" });
  const log = h("pre", { class: "log", id: "log", tabindex: "0", "aria-label": "log" });
  let following = true; // the log keeps its newest line in view until paused
  const follow = h(
    "button",
    {
      type: "button",
      id: "follow",
      "aria-pressed": "true",
      onclick: () => {
        following = !following;
        follow.setAttribute("aria-pressed", String(following));
        follow.textContent = following ? "Pause following" : "Follow the log";
        if (following) log.scrollTop = log.scrollHeight;
      },
    },
    "Pause following",
  );
  const actions = h("div", {});
  const about = h("section", { id: "about" });
  const outputs = h("section", { id: "outputs" });
  let outputsShown = false;
  const status = h("span", { id: "run-status" });
  fill(
    app,
    h("h1", {}, "Run ", h("span", { class: "mono", id: "run-title" }, runTitle(job)), " ", status),
    about,
    actions,
    facts,
    h("h2", {}, "Metrics"),
    charts,
    summary,
    outputs,
    h("h2", {}, "Log"),
    h("div", { class: "actions" }, follow),
    log,
  );
  let lastMetrics = null;
  async function draw(current) {
    const before = job;
    job = current;
    fill(status, badge(job.status));
    fill(document.getElementById("run-title"), runTitle(job));
    if (
      !about.firstChild ||
      before.name !== job.name ||
      before.description !== job.description ||
      JSON.stringify(before.tags) !== JSON.stringify(job.tags) ||
      before.archived !== job.archived
    ) {
      fill(about, ...aboutRun(job, (changed) => draw(changed)));
    }
    const rows = [
      ["Experiment", job.experiment],
      ["Script", job.script],
      ["Started by", job.created_by],
      ["Backend run", job.backend_run_id || "—"],
      ["Data path", job.datapath || "—"],
      ["Data version", job.data_version || "—"],
      ["Script digest", job.script_digest || "—"],
      ["Estimators", job.params.estimators ?? "—"],
      [
        "Arguments",
        Object.entries(job.params.args || {})
          .map(([k, v]) => `--${k}=${v}`)
          .join(" ") || "—",
      ],
      ["Started", when(job.started_at)],
      ["Duration", duration(job)],
      ["Model version", modelLink(job.model_version)],
    ];
    if (job.schedule)
      rows.splice(3, 0, [
        "Schedule",
        h(
          "span",
          { id: "run-schedule" },
          h("a", { href: `/ui/schedules#${encodeURIComponent(job.schedule.name)}` }, job.schedule.name),
          ` fired ${job.schedule.fire}`,
        ),
      ]);
    if (job.error) rows.push(["Error", h("span", { class: "error" }, job.error.split("\n")[0])]);
    if (job.metrics_error)
      rows.push(["Metrics", h("span", { class: "error" }, `could not be read: ${job.metrics_error}`)]);
    fill(facts, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    fill(actions);
    if (ROLE === "full" && !TERMINAL.has(job.status)) {
      addTo(actions, h("button", { class: "danger", id: "cancel", onclick: cancel }, "Cancel run"));
    }
    if (ROLE === "full") {
      addTo(actions, " ", h("a", { href: `/ui/train?from=${encodeURIComponent(job.id)}`, id: "again" }, "Run again…"));
    }
    if (job.studio_url) {
      addTo(
        actions,
        " ",
        h(
          "a",
          { href: job.studio_url, id: "studio", target: "_blank", rel: "noopener noreferrer" },
          "Azure ML studio ↗",
        ),
      );
    }
    if (TERMINAL.has(job.status) && job.backend_run_id && !outputsShown) {
      outputsShown = true;
      await part(outputs, () => drawOutputs());
    }
    const signature = JSON.stringify(job.metrics);
    if (signature !== lastMetrics) {
      lastMetrics = signature;
      await part(charts, () => drawCharts());
    }
  }
  // What the run wrote under outputs/ (what a model version of it holds), and the whole as one download.
  async function drawOutputs() {
    const listed = await api(`/runs/${encodeURIComponent(job.id)}/outputs`);
    if (!listed.files.length) {
      fill(outputs, h("h2", {}, "Outputs"), h("p", { class: "hint" }, "The run wrote nothing under outputs/."));
      return;
    }
    const shownFiles = listed.files.slice(0, 50);
    fill(
      outputs,
      h("h2", {}, "Outputs"),
      h(
        "a",
        {
          href: `/runs/${encodeURIComponent(job.id)}/outputs/archive`,
          id: "download-outputs",
          download: `${job.backend_run_id}-outputs.tar.gz`,
        },
        `Download outputs (${listed.files.length} ${listed.files.length === 1 ? "file" : "files"}, tar.gz)`,
      ),
      h("ul", { class: "files mono" }, ...shownFiles.map((name) => h("li", {}, name))),
      listed.files.length > shownFiles.length
        ? h("p", { class: "hint" }, `and ${listed.files.length - shownFiles.length} more`)
        : null,
    );
  }
  async function drawCharts() {
    let history;
    try {
      history = await api(`/runs/${encodeURIComponent(job.id)}/metrics`);
    } catch (error) {
      fill(charts, failure(error)); // not "no metrics": they could not be read, and this says why
      return;
    }
    const numeric = Object.entries(history.metrics)
      .map(([name, values]) => [name, values.flat().filter((v) => typeof v === "number")])
      .filter(([, values]) => values.length);
    fill(summary, ...(numeric.length ? [metricsTable(numeric)] : []));
    // A metric logged once is a number, not a one-dot chart (most scripts log accuracy once).
    const once = numeric.filter(([, values]) => values.length === 1);
    fill(
      charts,
      once.length
        ? h(
            "dl",
            { class: "single-metrics", id: "single-metrics" },
            ...once.flatMap(([name, values]) => [
              h("dt", {}, name),
              h("dd", { "data-metric": name }, shown(values[0])),
            ]),
          )
        : null,
      ...numeric
        .filter(([, values]) => values.length > 1)
        .map(([name, values]) =>
          h(
            "figure",
            { "data-metric": name },
            h("figcaption", {}, `${name} (${values.length})`),
            chart(
              values.map((v, i) => [i + 1, v]),
              { label: name },
            ),
          ),
        ),
    );
    if (!charts.children.length) addTo(charts, h("p", { class: "hint" }, "No numeric metrics logged yet."));
  }
  async function cancel() {
    try {
      await draw(await api(`/runs/${encodeURIComponent(job.id)}/cancel`, { method: "POST" }));
    } catch (error) {
      addTo(actions, failure(error));
    }
  }
  // Each part on its own: a chart that fails to draw must not stop the live status or the log.
  listen(`/events?job=${encodeURIComponent(job.id)}&after=0`, {
    run: (current) => part(facts, () => draw(current)),
    log: (chunk) => {
      addTo(log, chunk.text);
      if (following) log.scrollTop = log.scrollHeight;
    },
  });
  await part(facts, () => draw(job));
  setInterval(() => TERMINAL.has(job.status) || part(facts, () => draw(job)), 1000); // the duration ticks
}

// -- compare -------------------------------------------------------------------------------
// Items side by side, a column each: rows of [label, shown value, compared value]; a row whose values
// differ is marked (colour, a ≠ sign, and words for screen readers).
function sideBySide(id, heads, items, rows) {
  const head = h("tr", {}, h("th", { scope: "col" }, ""), ...heads.map((cell) => h("th", { scope: "col" }, cell)));
  const body = rows.map(([label, show, key = show]) => {
    const values = items.map((item) => String(key(item) ?? ""));
    const differs = new Set(values).size > 1;
    return h(
      "tr",
      { class: differs ? "differs" : "", "data-row": label },
      h("th", { scope: "row" }, label, differs ? h("span", { class: "visually-hidden" }, " (differs)") : ""),
      ...items.map((item) => h("td", {}, show(item))),
    );
  });
  return h(
    "div",
    { class: "table-wrap" },
    h("table", { id, class: "side-by-side" }, h("thead", {}, head), h("tbody", {}, ...body)),
  );
}

// Runs side by side: their settings and last metric values (what differs marked), and each metric
// they share drawn overlaid. The URL holds the ids, so the page can be pasted into a chat.
async function comparePage() {
  const ids = (new URLSearchParams(location.search).get("ids") || "").split(",").filter(Boolean);
  fill(app, h("h1", {}, "Compare runs"));
  if (ids.length < 2 || ids.length > MAX_COMPARED) {
    addTo(app, h("p", { class: "hint" }, `Tick 2 to ${MAX_COMPARED} runs on the runs list to compare them.`));
    return;
  }
  let listed;
  let histories;
  try {
    const query = encodeURIComponent(ids.join(","));
    [listed, histories] = await Promise.all([api(`/runs?ids=${query}&limit=50`), api(`/runs/metrics?ids=${query}`)]);
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  const runs = histories.runs.map((one) => listed.items.find((job) => job.id === one.id)).filter(Boolean);
  const name = runTitle;
  const args = [...new Set(runs.flatMap((job) => Object.keys(job.params.args || {})))].sort();
  const metricNames = [...new Set(runs.flatMap((job) => Object.keys(job.metrics || {})))].sort();
  const rows = [
    ["Status", (job) => badge(job.status), (job) => job.status],
    ["Experiment", (job) => job.experiment],
    ["Script", (job) => job.script],
    ["Estimators", (job) => job.params.estimators ?? "—"],
    ...args.map((arg) => [`--${arg}`, (job) => job.params.args?.[arg] ?? "—"]),
    ["Data version", (job) => digest(job.data_version), (job) => job.data_version],
    ["Script digest", (job) => digest(job.script_digest), (job) => job.script_digest],
    ["Started by", (job) => job.created_by || "api"],
    ["Duration", (job) => duration(job), () => ""],
    ...metricNames.map((metric) => [metric, (job) => shown(job.metrics?.[metric]), (job) => job.metrics?.[metric]]),
  ];
  const heads = runs.map((job, i) => [
    h("span", { class: `swatch series-${i}`, "aria-hidden": "true" }),
    h("a", { href: `/ui/runs/${encodeURIComponent(job.id)}`, class: "mono", title: job.id }, name(job)),
  ]);
  const table = sideBySide("compare-table", heads, runs, rows);
  const charts = h("div", { class: "charts", id: "compare-charts" });
  const numeric = histories.runs.map((one) =>
    Object.fromEntries(
      Object.entries(one.metrics || {})
        .map(([metric, values]) => [metric, values.flat().filter((v) => typeof v === "number")])
        .filter(([, values]) => values.length),
    ),
  );
  // Curves only: a metric each run logged once is a number, compared in the table above.
  const shared = [...new Set(numeric.flatMap(Object.keys))]
    .filter((metric) => numeric.filter((m) => metric in m).length >= 2)
    .filter((metric) => numeric.some((m) => (m[metric] || []).length > 1))
    .sort();
  for (const metric of shared) {
    const series = runs
      .map((job, i) => ({
        label: name(job),
        cls: `series-${i}`,
        points: (numeric[i][metric] || []).map((v, n) => [n + 1, v]),
      }))
      .filter((one) => one.points.length);
    const legend = h(
      "ul",
      { class: "legend" },
      ...series.map((one) => h("li", {}, h("span", { class: `swatch ${one.cls}`, "aria-hidden": "true" }), one.label)),
    );
    addTo(
      charts,
      h(
        "figure",
        { "data-metric": metric },
        h("figcaption", {}, metric),
        overlay(series, `${metric} of ${series.length} runs`),
        legend,
      ),
    );
  }
  if (!shared.length)
    addTo(charts, h("p", { class: "hint" }, "These runs share no metric logged more than once (see the table)."));
  const onlyDiffer = h("input", {
    type: "checkbox",
    id: "only-differ",
    onchange: (e) => table.querySelector("table").classList.toggle("only-differ", e.target.checked),
  });
  addTo(
    app,
    h(
      "p",
      { class: "hint" },
      "Rows whose values differ are marked. ",
      h("label", { class: "inline" }, onlyDiffer, "Only rows that differ"),
    ),
    table,
    h("h2", {}, "Parameter against metric"),
    await againstSection(runs),
    h("h2", {}, "Metrics, overlaid"),
    charts,
  );
}

// Any parameter or metric against another, over the compared runs or every run of their experiment.
async function againstSection(compared) {
  const box = h("section", { id: "against" });
  let runs = compared;
  const across = h("select", { id: "against-x", "aria-label": "across" });
  const up = h("select", { id: "against-y", "aria-label": "up" });
  const plot = h("figure", { id: "against-plot" });
  const together = h("figure", { id: "parallel-plot" });
  const experiment = compared[0]?.experiment;
  const wider = h(
    "button",
    {
      type: "button",
      id: "against-experiment",
      onclick: async () => {
        try {
          const found = await api(`/runs?experiment=${encodeURIComponent(experiment)}&limit=200`);
          runs = found.items;
          wider.disabled = true;
          choices();
        } catch (error) {
          fill(plot, failure(error));
        }
      },
    },
    `Every run of ${experiment}`,
  );
  function choices() {
    const names = [...new Set(runs.flatMap((job) => Object.keys(quantities(job))))].sort();
    const keep = (select, fallback) => {
      const was = select.value;
      fill(select, ...names.map((name) => h("option", { value: name }, name)));
      select.value = names.includes(was) ? was : fallback(names) || names[0] || "";
    };
    keep(across, (all) =>
      all.find((n) => n.startsWith("params.") && new Set(runs.map((j) => quantities(j)[n])).size > 1),
    );
    keep(up, (all) =>
      all.includes("metrics.accuracy") ? "metrics.accuracy" : all.find((n) => n.startsWith("metrics.")),
    );
    draw();
  }
  function drawParallel() {
    const lines = runs.map((job, i) => ({ values: quantities(job), label: runTitle(job), cls: `series-${i % 10}` }));
    // The quantities at least two runs have and that do not all agree: params first, then metrics.
    const names = [...new Set(lines.flatMap((line) => Object.keys(line.values)))]
      .filter((name) => lines.filter((line) => name in line.values).length >= 2)
      .filter((name) => new Set(lines.map((line) => line.values[name]).filter((v) => v !== undefined)).size > 1)
      .sort((a, b) =>
        a.startsWith("params.") === b.startsWith("params.") ? a.localeCompare(b) : a.startsWith("params.") ? -1 : 1,
      )
      .slice(0, MAX_AXES);
    fill(
      together,
      names.length > 1
        ? [parallel(lines, names), h("figcaption", {}, `${names.length} quantities that differ, one line a run`)]
        : h("p", { class: "hint" }, "Fewer than two quantities differ between these runs."),
    );
  }
  function draw() {
    drawParallel();
    const dots = runs
      .map((job, i) => ({ job, i, q: quantities(job) }))
      .filter(({ q }) => across.value in q && up.value in q)
      .map(({ job, i, q }) => ({ x: q[across.value], y: q[up.value], label: runTitle(job), cls: `series-${i % 10}` }));
    fill(
      plot,
      scatter(dots, { x: across.value, y: up.value }),
      h("figcaption", {}, `${up.value} against ${across.value}: ${dots.length} of ${runs.length} runs have both`),
    );
  }
  across.addEventListener("change", draw);
  up.addEventListener("change", draw);
  fill(
    box,
    h(
      "div",
      { class: "actions" },
      h("label", {}, "Across ", across),
      " ",
      h("label", {}, "Up ", up),
      " ",
      experiment ? wider : null,
    ),
    plot,
    h("h3", {}, "All together"),
    together,
  );
  choices();
  return box;
}

// -- models --------------------------------------------------------------------------------
async function modelsPage() {
  fill(app, h("h1", {}, "Models"));
  let models;
  try {
    ({ models } = await api("/models/summary"));
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  if (!models.length) {
    addTo(app, h("p", { class: "hint" }, "No model registered yet: a completed run registers its outputs/ as one."));
    return;
  }
  const accuracy = (found) => (found && found.accuracy !== null ? found.accuracy.toFixed(4) : "—");
  const rows = models.map((m) =>
    h(
      "tr",
      { "data-model": m.name },
      h("th", { scope: "row" }, h("a", { href: `/ui/models/${encodeURIComponent(m.name)}` }, m.name)),
      h(
        "td",
        { class: "latest" },
        `v${m.latest.version}`,
        m.latest.accuracy !== null ? ` (${accuracy(m.latest)})` : "",
      ),
      h("td", { class: "best" }, m.best ? `v${m.best.version} ★ ${accuracy(m.best)}` : "—"),
      h("td", { class: "count" }, m.versions),
      h("td", {}, when(m.last_registered)),
      h("td", {}, m.accuracy.length > 1 ? sparkline(m.accuracy, `accuracy of ${m.name} by version`) : "—"),
    ),
  );
  addTo(
    app,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "models" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Model", "Latest", "Best by accuracy", "Versions", "Last registered", "Accuracy trend"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, ...rows),
      ),
    ),
  );
}

// A line small enough for a table cell: the shape of a trend, its values in the title.
function sparkline(points, label) {
  const name = `${label}: ${points.map(([x, y]) => `v${x} ${y}`).join(", ")}`;
  const { svg, add } = svgFrame("sparkline", "0 0 100 24", name);
  const { X, Y } = scales(points, [2, 96], [2, 20]);
  add("polyline", { class: "line", points: points.map(([x, y]) => `${X(x)},${Y(y)}`).join(" ") });
  return svg;
}

async function modelPage(name) {
  fill(app, h("h1", {}, "Model ", name));
  let versions;
  try {
    ({ versions } = await api(`/models/${encodeURIComponent(name)}/versions`));
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  // Azure keeps tags as strings ("0.93"): a tag that reads as a number is an accuracy.
  const score = (v) =>
    v.tags.accuracy === "" || v.tags.accuracy === null || typeof v.tags.accuracy === "boolean"
      ? NaN
      : Number(v.tags.accuracy);
  const scored = versions.filter((v) => Number.isFinite(score(v)));
  const best = scored.length ? scored.reduce((a, b) => (score(b) >= score(a) ? b : a)).version : null;
  if (scored.length) {
    addTo(
      app,
      h(
        "figure",
        {},
        h("figcaption", {}, "accuracy by version (best marked)"),
        chart(
          scored.map((v) => [v.version, score(v)]),
          { best, label: "accuracy by version" },
        ),
      ),
    );
  }
  const rows = versions
    .slice()
    .reverse()
    .map((v) =>
      h(
        "tr",
        { class: v.version === best ? "best" : null, "data-version": v.version },
        h(
          "td",
          {},
          `v${v.version}`,
          v.version === best ? " ★ best" : "",
          ...(v.aliases || []).map((alias) => [" ", h("span", { class: "alias", "data-alias": alias }, alias)]),
          v.archived ? [" ", h("span", { class: "alias archived" }, "archived")] : null,
        ),
        h("td", {}, Number.isFinite(score(v)) ? score(v).toFixed(4) : "—"),
        h(
          "td",
          { class: "mono" },
          Object.entries(v.tags)
            .map(([k, t]) => `${k}=${t}`)
            .join(" ") || "—",
        ),
        h(
          "td",
          {},
          v.run_id
            ? h("a", { href: `/ui/runs/${encodeURIComponent(v.run_id)}`, class: "mono run-link" }, short(v.run_id, 24))
            : "—",
        ),
        h(
          "td",
          { class: "mono" },
          v.data_version
            ? h("a", { href: `/ui/?data_version=${encodeURIComponent(v.data_version)}` }, digest(v.data_version))
            : "—",
        ),
        h("td", { class: "mono" }, digest(v.script_digest)),
        h("td", {}, when(v.created_at)),
        h(
          "td",
          {},
          h("a", { href: `/models/${encodeURIComponent(name)}/versions/${v.version}/archive`, download: "" }, "tar.gz"),
        ),
      ),
    );
  addTo(
    app,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "versions" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Version", "Accuracy", "Tags", "Run", "Data version", "Script digest", "Registered", "Download"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
  if (ROLE === "full") addTo(app, promoteForm(name, versions));
  await part(app, () => aliasHistory(name));
  if (versions.length >= 2) await part(app, () => compareVersions(versions, best, score));
}

// Point an alias at a version. Before asking, the gate's verdict (GET .../check) shows the candidate and the
// current holder side by side and what Promote would do; the answer says what happened, in the API's words
// (moved; an approval asked, for a protected alias; or the gate's refusal naming both figures).
function promoteForm(name, versions) {
  const outcome = h("p", { id: "promote-outcome", role: "status" });
  const verdict = h("div", { id: "promote-verdict", "aria-live": "polite" });
  const alias = h("input", { id: "promote-alias", name: "alias", value: "production", required: true, size: 14 });
  const version = h(
    "select",
    { id: "promote-version", name: "version" },
    versions
      .filter((v) => !v.archived)
      .reverse()
      .map((v) => h("option", { value: v.version }, `v${v.version}`)),
  );
  const reason = h("input", { id: "promote-reason", name: "reason", size: 24, maxlength: 500 });
  const button = h("button", { type: "submit", id: "promote" }, "Promote");
  let asked = 0;
  async function check() {
    const mine = ++asked;
    const url = `/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias.value.trim())}/check`;
    try {
      const found = await api(`${url}?version=${encodeURIComponent(version.value)}`);
      if (mine !== asked) return; // a later check is on its way
      fill(verdict, verdictTable(found));
      button.disabled = found.outcome === "refused";
      fill(button, found.outcome === "asks_approval" ? "Ask for approval" : "Promote");
    } catch (error) {
      if (mine !== asked) return;
      fill(verdict, failure(error));
      button.disabled = false;
    }
  }
  let pending;
  const recheck = () => {
    clearTimeout(pending);
    pending = setTimeout(check, 250);
  };
  alias.addEventListener("input", recheck);
  version.addEventListener("change", recheck);
  if (version.value) setTimeout(check, 0);
  async function submit(event) {
    event.preventDefault();
    const url = `/models/${encodeURIComponent(name)}/aliases/${encodeURIComponent(alias.value.trim())}`;
    try {
      const body = { version: Number(version.value), reason: reason.value.trim() || null };
      const answer = await api(url, { method: "PUT", json: body });
      fill(
        outcome,
        answer.approval
          ? `${answer.approval.alias} is protected: approval ${answer.approval.id} asked; someone else approves it on the Approvals page.`
          : `${name}@${answer.alias} is now v${answer.version}.`,
      );
      if (!answer.approval) setTimeout(() => modelPage(name), 600);
    } catch (error) {
      fill(outcome, failure(error));
    }
  }
  return h(
    "section",
    {},
    h("h2", {}, "Promote"),
    h(
      "form",
      { class: "filters", onsubmit: submit },
      h("label", {}, "Alias ", alias),
      h("label", {}, "to ", version),
      h("label", {}, "Reason ", reason),
      button,
    ),
    verdict,
    outcome,
  );
}

function verdictTable(found) {
  const figure = (value) => (value === null || value === undefined ? "—" : String(value));
  const metric = found.verdict.gate ? found.verdict.gate.metric : "gate";
  const says = {
    moves: "Promote moves the alias now.",
    asks_approval: `${found.alias} is protected: Promote asks someone else to approve.`,
    refused: "The gate refuses this move.",
  }[found.outcome];
  return [
    h(
      "table",
      { id: "promote-sides" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["", "Version", metric].map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "row" }, "Candidate"),
          h("td", {}, `v${found.candidate.version}`),
          h("td", {}, figure(found.candidate.figure)),
        ),
        h(
          "tr",
          {},
          h("th", { scope: "row" }, `Holds ${found.alias}`),
          h("td", {}, found.holder ? `v${found.holder.version}` : "nobody"),
          h("td", {}, found.holder ? figure(found.holder.figure) : "—"),
        ),
      ),
    ),
    h("p", { class: found.outcome === "refused" ? "error" : "hint" }, `${says} ${found.verdict.reason}`),
  ];
}

async function aliasHistory(name) {
  const { history } = await api(`/models/${encodeURIComponent(name)}/history`);
  const line = (change) => {
    const move =
      change.to === null
        ? `removed (was v${change.from})`
        : change.from === null
          ? `set to v${change.to}`
          : `v${change.from} → v${change.to}`;
    const gate = change.gate ? ` · gate: ${change.gate.reason}` : "";
    const approved = change.approved_by ? ` · approved by ${change.approved_by}` : "";
    const why = change.reason ? ` · “${change.reason}”` : "";
    return h(
      "li",
      {},
      h("span", { class: "alias" }, change.alias),
      ` ${move} by ${change.by}, ${when(change.at)}${approved}${gate}${why}`,
    );
  };
  addTo(
    app,
    h(
      "section",
      {},
      h("h2", {}, "Alias history"),
      history.length
        ? h("ul", { id: "alias-history", class: "timeline" }, history.map(line))
        : h("p", { class: "hint" }, "No alias yet: Promote names a version production, staging or any alias."),
    ),
  );
}

async function approvalsPage() {
  fill(app, h("h1", {}, "Approvals"));
  let approvals;
  try {
    ({ approvals } = await api("/approvals"));
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  if (!approvals.length) {
    addTo(
      app,
      h(
        "p",
        { class: "hint" },
        "No approval asked yet: moves of protected aliases wait here for a second pair of eyes.",
      ),
    );
    return;
  }
  const decide = (approval, verb) => async (event) => {
    const cell = event.target.closest("td");
    try {
      await api(`/approvals/${encodeURIComponent(approval.id)}/${verb}`, { method: "POST", json: {} });
      await approvalsPage();
    } catch (error) {
      addTo(cell, failure(error));
    }
  };
  const rows = approvals.map((a) =>
    h(
      "tr",
      { "data-approval": a.id },
      h("td", { class: "mono" }, a.id),
      h(
        "td",
        {},
        h("a", { href: `/ui/models/${encodeURIComponent(a.model)}` }, a.model),
        "@",
        h("span", { class: "alias" }, a.alias),
      ),
      h("td", {}, a.version === null ? "remove" : `v${a.version}`),
      h("td", {}, a.requested_by, " · ", when(a.requested_at)),
      h("td", {}, a.reason || "—"),
      h(
        "td",
        {},
        h("span", { class: `status ${a.status}` }, a.status),
        a.decided_by ? ` by ${a.decided_by}` : "",
        a.note ? ` · ${a.note}` : "",
      ),
      h(
        "td",
        {},
        ROLE === "full" && a.status === "pending"
          ? [
              h("button", { class: "approve", onclick: decide(a, "approve") }, "Approve"),
              " ",
              h("button", { class: "danger reject", onclick: decide(a, "reject") }, "Reject"),
            ]
          : "—",
      ),
    ),
  );
  const heads = ["Approval", "Alias", "Version", "Asked by", "Reason", "Status", ""];
  addTo(
    app,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "approvals" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            heads.map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
}

// -- schedules -------------------------------------------------------------------------------
function triggerText(trigger) {
  if (trigger.cron) return `cron ${trigger.cron} (${trigger.timezone || "UTC"})`;
  return trigger.every ? `every ${trigger.every}` : `new data at ${trigger.on_data}`;
}

async function schedulesPage() {
  fill(app, h("h1", {}, "Schedules"));
  let schedules;
  try {
    ({ schedules } = await api("/schedules"));
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  if (!schedules.length) {
    addTo(
      app,
      h("p", { class: "hint" }, "No schedule yet: POST /schedules retrains on a cron, every so often or on new data."),
    );
    return;
  }
  const toggle = (s) => async (event) => {
    const cell = event.target.closest("td");
    try {
      await api(`/schedules/${encodeURIComponent(s.name)}`, { method: "PATCH", json: { paused: !s.paused } });
      await schedulesPage();
    } catch (error) {
      addTo(cell, failure(error));
    }
  };
  const fireText = (f) =>
    h(
      "li",
      {},
      h(
        "span",
        { class: `status ${f.status === "failed" || f.status === "refused" ? "Failed" : "Completed"}` },
        f.status,
      ),
      " ",
      f.run ? h("a", { href: `/ui/runs/${encodeURIComponent(f.run)}`, class: "mono" }, f.run) : "no run",
      ` · ${f.tick ? when(f.tick) : f.key}`,
      f.outcome ? ` · ${f.outcome}` : "",
    );
  const rows = schedules.map((s) =>
    h(
      "tr",
      { id: s.name, "data-schedule": s.name },
      h("th", { scope: "row" }, s.name),
      h("td", {}, triggerText(s.trigger)),
      h("td", {}, `${s.run.script} on ${s.run.datapath}`, s.promote ? ` → ${s.promote.alias}` : ""),
      h("td", { class: "next" }, s.paused ? "paused" : s.next_fire ? when(s.next_fire) : "on new data"),
      h("td", {}, s.fires.length ? h("ul", { class: "timeline" }, s.fires.map(fireText)) : "—"),
      h(
        "td",
        {},
        ROLE === "full"
          ? h("button", { class: s.paused ? "resume" : "pause", onclick: toggle(s) }, s.paused ? "Resume" : "Pause")
          : "—",
      ),
    ),
  );
  addTo(
    app,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "schedules" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Schedule", "Trigger", "Runs", "Next fire", "Last fires", ""].map((t) => h("th", { scope: "col" }, t)),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
}

// -- endpoints ---------------------------------------------------------------------------------
function trafficText(endpoint) {
  return endpoint.deployments.map((d) => `${d.model} v${d.version} ${d.traffic}% (${d.slot})`).join(", ") || "—";
}

async function endpointsPage() {
  fill(app, h("h1", {}, "Endpoints"));
  let endpoints;
  try {
    ({ endpoints } = await api("/deployments"));
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  if (!endpoints.length) {
    addTo(
      app,
      h(
        "p",
        { class: "hint" },
        "No endpoint yet: POST /deployments (or `deploy <model>:<version> to <endpoint>` in chat).",
      ),
    );
    return;
  }
  const rows = endpoints.map((e) =>
    h(
      "tr",
      { "data-endpoint": e.endpoint },
      h("th", { scope: "row" }, h("a", { href: `/ui/endpoints/${encodeURIComponent(e.endpoint)}` }, e.endpoint)),
      h("td", {}, h("span", { class: `status ${e.health === "up" ? "Completed" : "Failed"}` }, e.health)),
      h("td", {}, trafficText(e)),
      h("td", {}, e.follow ? `${e.follow.model}@${e.follow.alias}` : "—"),
      h("td", { class: "mono" }, e.scoring_url),
    ),
  );
  addTo(
    app,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "endpoints" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Endpoint", "Health", "Versions and traffic", "Follows", "Scoring URL"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
}

async function endpointPage(name) {
  fill(app, h("h1", {}, `Endpoint ${name}`));
  let found;
  try {
    found = await api(`/deployments/${encodeURIComponent(name)}`);
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  const figure = (value) => (value === null || value === undefined ? "—" : String(value));
  const rows = found.deployments.map((d) => {
    const stats = found.stats[d.slot] || {};
    return h(
      "tr",
      { "data-slot": d.slot },
      h("th", { scope: "row" }, d.slot),
      h("td", {}, h("a", { href: `/ui/models/${encodeURIComponent(d.model)}` }, d.model), ` v${d.version}`),
      h("td", {}, `${d.traffic}%`),
      h("td", {}, h("span", { class: `status ${d.state === "failed" ? "Failed" : "Completed"}` }, d.state)),
      h("td", {}, figure(stats.requests)),
      h("td", {}, figure(stats.errors)),
      h("td", {}, figure(stats.p50_ms)),
      h("td", {}, figure(stats.p99_ms)),
    );
  });
  addTo(
    app,
    h(
      "p",
      {},
      h("span", { class: `status ${found.health === "up" ? "Completed" : "Failed"}` }, found.health),
      " · ",
      h("span", { class: "mono" }, found.scoring_url),
      found.follow ? ` · follows ${found.follow.model}@${found.follow.alias}` : "",
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "slots" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Slot", "Version", "Traffic", "State", "Requests", "Errors", "p50 ms", "p99 ms"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    ),
  );
  if (ROLE === "full" && found.deployments.some((d) => d.traffic === 0 && d.state !== "failed")) {
    const said = h("p", { id: "rollback-outcome", role: "status" });
    const rollback = async () => {
      try {
        const job = await api(`/deployments/${encodeURIComponent(name)}/rollback?wait=120`, {
          method: "POST",
          json: {},
        });
        fill(said, `Rolled back: v${job.version} serves (${job.slot}).`);
        setTimeout(() => endpointPage(name), 600);
      } catch (error) {
        fill(said, failure(error));
      }
    };
    addTo(app, h("p", {}, h("button", { id: "rollback", class: "danger", onclick: rollback }, "Roll back"), said));
  }
  if (ROLE === "full" && found.deployments.some((d) => d.traffic > 0)) await part(app, () => tryForm(name));
  const history = found.history.map((job) =>
    h(
      "li",
      {},
      h("span", { class: `status ${job.status}` }, job.status),
      ` ${job.action} ${job.model || ""}${job.version ? ` v${job.version}` : ""} by ${job.created_by}, ${when(job.created_at)}`,
      job.traffic
        ? ` · ${Object.entries(job.traffic)
            .map(([s, t]) => `${s} ${t}%`)
            .join(", ")}`
        : "",
      job.trigger ? ` · ${job.trigger}` : "",
      job.error ? ` · ${job.error.split("\n")[0]}` : "",
    ),
  );
  addTo(app, h("section", {}, h("h2", {}, "History"), h("ul", { id: "endpoint-history", class: "timeline" }, history)));
}

// A request built from the live version's own parameters (categories as choices, numbers as numbers), sent
// through the service (which holds the endpoint's key), the endpoint's answer shown as it came.
async function tryForm(name) {
  const { params, version } = await api(`/deployments/${encodeURIComponent(name)}/params`);
  const answer = h("pre", { id: "try-answer", role: "status" });
  const inputs = Object.entries(params).map(([key, kinds]) => {
    const id = `try-${key}`;
    const input = Array.isArray(kinds)
      ? h(
          "select",
          { id, name: key },
          kinds.map((k) => h("option", { value: k }, k)),
        )
      : h("input", { id, name: key, type: "number", step: "any", value: "0", required: true, size: 8 });
    return [key, Array.isArray(kinds), h("label", {}, `${key} `, input), input];
  });
  async function send(event) {
    event.preventDefault();
    const body = Object.fromEntries(
      inputs.map(([key, categorical, , input]) => [key, categorical ? input.value : Number(input.value)]),
    );
    try {
      const found = await api(`/deployments/${encodeURIComponent(name)}/try`, { method: "POST", json: body });
      fill(answer, `${found.status} from v${found.version} (${found.slot}): ${JSON.stringify(found.answer, null, 1)}`);
    } catch (error) {
      fill(answer, failure(error));
    }
  }
  addTo(
    app,
    h(
      "section",
      {},
      h("h2", {}, `Try it (v${version})`),
      h(
        "form",
        { class: "filters", id: "try", onsubmit: send },
        inputs.map(([, , label]) => label),
        h("button", { type: "submit" }, "Predict"),
      ),
      answer,
    ),
  );
}

// Two versions side by side (their URL holds them: ?a=&b=): tags, lineage, and the runs that made them
// (settings and last metric values, from GET /runs?ids=), differences marked.
async function compareVersions(versions, best, score) {
  const params = new URLSearchParams(location.search);
  const numbers = versions.map((v) => v.version);
  const latest = numbers[numbers.length - 1];
  const pick = (key, fallback) => (numbers.includes(Number(params.get(key))) ? Number(params.get(key)) : fallback);
  const fallbackA = best !== null && best !== latest ? best : numbers[numbers.length - 2];
  const chooser = (id, label, chosen) =>
    h(
      "label",
      {},
      label,
      h(
        "select",
        { id, name: id },
        numbers
          .slice()
          .reverse()
          .map((n) => h("option", { value: n, selected: n === chosen }, `v${n}${n === best ? " ★" : ""}`)),
      ),
    );
  const a = chooser("version-a", "Version", pick("a", fallbackA));
  const b = chooser("version-b", "with", pick("b", latest));
  const table = h("div", { id: "version-compare" });
  const section = h("section", {}, h("h2", {}, "Compare two versions"), h("div", { class: "filters" }, a, b), table);
  addTo(app, section);
  async function draw() {
    const chosen = [Number(a.querySelector("select").value), Number(b.querySelector("select").value)];
    const next = new URLSearchParams(location.search);
    next.set("a", chosen[0]);
    next.set("b", chosen[1]);
    history.replaceState(null, "", `?${next.toString()}`);
    const pair = chosen.map((n) => versions.find((v) => v.version === n));
    const runIds = [...new Set(pair.map((v) => v.run_id).filter(Boolean))];
    const listed = runIds.length
      ? await api(`/runs?ids=${encodeURIComponent(runIds.join(","))}&limit=50`)
      : { items: [] };
    const runOf = (v) =>
      listed.items.find((job) => v.run_id && (job.backend_run_id === v.run_id || job.id === v.run_id));
    const items = pair.map((v) => ({ v, run: runOf(v) }));
    const tagNames = [...new Set(pair.flatMap((v) => Object.keys(v.tags)))].filter((t) => t !== "accuracy").sort();
    const argNames = [...new Set(items.flatMap(({ run }) => Object.keys(run?.params.args || {})))].sort();
    const metricNames = [...new Set(items.flatMap(({ run }) => Object.keys(run?.metrics || {})))].sort();
    const rows = [
      ["Registered", ({ v }) => when(v.created_at)],
      ["Accuracy", ({ v }) => (Number.isFinite(score(v)) ? score(v).toFixed(4) : "—"), ({ v }) => score(v)],
      ...tagNames.map((tag) => [`tag ${tag}`, ({ v }) => v.tags[tag] ?? "—"]),
      [
        "Run",
        ({ v, run }) =>
          v.run_id
            ? h("a", { href: `/ui/runs/${encodeURIComponent(run?.id || v.run_id)}`, class: "mono" }, v.run_id)
            : "—",
        ({ v }) => v.run_id,
      ],
      ["Data version", ({ v }) => digest(v.data_version), ({ v }) => v.data_version],
      ["Script digest", ({ v }) => digest(v.script_digest), ({ v }) => v.script_digest],
      ["Script", ({ run }) => run?.script ?? "—"],
      ["Estimators", ({ run }) => run?.params.estimators ?? "—"],
      ...argNames.map((arg) => [`--${arg}`, ({ run }) => run?.params.args?.[arg] ?? "—"]),
      ...metricNames.map((metric) => [
        metric,
        ({ run }) => shown(run?.metrics?.[metric]),
        ({ run }) => run?.metrics?.[metric],
      ]),
    ];
    const heads = pair.map((v) => `v${v.version}${v.version === best ? " ★ best" : ""}`);
    const runs = items.map(({ run }) => run).filter(Boolean);
    fill(
      table,
      sideBySide("versions-compared", heads, items, rows),
      runs.length === 2 && runs[0].id !== runs[1].id
        ? h(
            "p",
            {},
            h(
              "a",
              {
                href: `/ui/compare?ids=${runs.map((job) => encodeURIComponent(job.id)).join(",")}`,
                id: "compare-runs",
              },
              "Their runs' metric histories, overlaid →",
            ),
          )
        : null,
    );
  }
  for (const chooserLabel of [a, b])
    chooserLabel.querySelector("select").addEventListener("change", () => part(table, draw));
  await part(table, draw);
}

// -- data ----------------------------------------------------------------------------------
// -- uploading from the page ---------------------------------------------------------------
const ARCHIVES = [
  [/\.(tar\.gz|tgz)$/i, "application/gzip"],
  [/\.tar$/i, "application/x-tar"],
  [/\.zip$/i, "application/zip"],
];

// Files under a dropped folder, with their paths inside it (the browser's file-system entries).
async function filesOf(entry, prefix = "") {
  if (entry.isFile) return [[await new Promise((ok, fail) => entry.file(ok, fail)), prefix + entry.name]];
  const reader = entry.createReader();
  const found = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) return found;
    for (const child of batch) found.push(...(await filesOf(child, `${prefix}${entry.name}/`)));
  }
}

// POST /data with the upload's own progress (fetch() reports none): the body is one archive as it
// is, or the picked files as multipart 'files' parts named by their paths inside the folder.
function send(path, files, progress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/data${path ? `?path=${encodeURIComponent(path)}` : ""}`);
    xhr.setRequestHeader("X-CSRF-Token", CSRF);
    let body;
    const archive = files.length === 1 && ARCHIVES.find(([pattern]) => pattern.test(files[0][1]));
    if (archive) {
      xhr.setRequestHeader("Content-Type", archive[1]);
      body = files[0][0];
    } else {
      body = new FormData();
      for (const [file, name] of files) body.append("files", file, name);
    }
    const started = performance.now();
    xhr.upload.onprogress = (event) => progress(event.loaded, event.total, (performance.now() - started) / 1000);
    xhr.onload = () => {
      let answer = {};
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {}
      if (xhr.status === 401) location.href = `/ui/login?next=${encodeURIComponent(location.pathname)}`;
      if (xhr.status >= 200 && xhr.status < 300) resolve(answer);
      else reject(new Error(`${xhr.status}: ${answer.detail || xhr.statusText}`));
    };
    xhr.onerror = () => reject(new Error("the upload was cut off (the network, or the service went away)"));
    xhr.send(body);
  });
}

const size = (n) =>
  n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

function uploadForm(done) {
  const path = h("input", { id: "upload-path", name: "path", placeholder: "(the service's default)" });
  const folder = h("input", { id: "upload-folder", type: "file", webkitdirectory: true, multiple: true });
  const loose = h("input", { id: "upload-files", type: "file", multiple: true });
  const bar = h("progress", { id: "upload-progress", max: 1, value: 0, hidden: true, "aria-label": "upload progress" });
  const status = h("p", { id: "upload-status", role: "status" });
  const drop = h(
    "div",
    { class: "drop", id: "drop", tabindex: "0" },
    "Drop a folder, files or an archive (.tar, .tar.gz, .zip) here, or pick them:",
  );
  async function upload(files) {
    if (!files.length) return;
    bar.hidden = false;
    bar.value = 0;
    fill(status, `Uploading ${files.length} file(s)…`);
    try {
      const job = await send(path.value.trim(), files, (sent, total, seconds) => {
        bar.max = total || 1;
        bar.value = sent;
        fill(status, `${size(sent)} of ${size(total)} · ${size(sent / Math.max(seconds, 0.001))}/s`);
      });
      fill(status, `Sent; storing ${job.id}…`);
      const ended = await api(`/data/${encodeURIComponent(job.id)}?wait=120`);
      if (ended.status !== "Completed") throw new Error(ended.error || `the upload ended ${ended.status}`);
      fill(
        status,
        "Stored: ",
        h("strong", {}, ended.path),
        ` now holds data version `,
        h("span", { class: "mono", id: "upload-version" }, ended.digest),
        ` (${ended.files} files, ${size(ended.bytes)}).`,
      );
      done();
    } catch (error) {
      fill(status, failure(error));
    }
  }
  // A folder picked: its files, named by their paths inside it (its own name dropped, as upload-data.py does).
  folder.addEventListener("change", () =>
    upload([...folder.files].map((f) => [f, f.webkitRelativePath.split("/").slice(1).join("/") || f.name])),
  );
  loose.addEventListener("change", () => upload([...loose.files].map((f) => [f, f.name])));
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const entries = [...e.dataTransfer.items].map((item) => item.webkitGetAsEntry()).filter(Boolean);
    const single = entries.length === 1 && entries[0].isDirectory;
    const files = (await Promise.all(entries.map((entry) => filesOf(entry)))).flat();
    upload(single ? files.map(([f, name]) => [f, name.split("/").slice(1).join("/")]) : files);
  });
  return h(
    "form",
    { class: "upload", onsubmit: (e) => e.preventDefault() },
    h("label", {}, "Datastore path", path),
    drop,
    h("div", { class: "pickers" }, h("label", {}, "A folder", folder), h("label", {}, "Files or an archive", loose)),
    bar,
    status,
  );
}

async function dataPage() {
  fill(app, h("h1", {}, "Data"));
  const lists = h("div", { id: "data-lists" });
  if (ROLE === "full")
    addTo(
      app,
      h("h2", {}, "Upload"),
      uploadForm(() => drawLists(lists)),
    );
  addTo(app, lists);
  await drawLists(lists);
}

// Every version of one data path: when, by whom, its size, the runs that read it, and a preview of each.
async function drawHistory(box, path) {
  const { versions } = await api(`/datastore/history?path=${encodeURIComponent(path)}`);
  const preview = h("section", { id: "data-preview" });
  fill(
    box,
    h("h2", {}, "Versions of ", h("span", { class: "mono" }, path)),
    sideTable(
      "data-versions",
      ["Data version", "Now", "Uploaded", "By", "Files", "Bytes", "Runs", "Preview"],
      versions.map((v) => [
        h("span", { class: "mono", title: v.digest }, digest(v.digest)),
        v.current ? h("span", { class: "alias" }, "current") : "",
        v.uploaded_at ? when(v.uploaded_at) : "—",
        v.uploaded_by || "a script",
        v.files ?? "—",
        v.bytes === null || v.bytes === undefined ? "—" : v.bytes.toLocaleString(),
        v.runs ? h("a", { href: `/ui/?data_version=${encodeURIComponent(v.digest)}` }, `${v.runs}`) : "0",
        v.profiled
          ? h(
              "button",
              { type: "button", class: "preview", onclick: () => part(preview, () => drawPreview(preview, v.digest)) },
              "Preview",
            )
          : h("span", { class: "hint" }, "no preview"),
      ]),
    ),
    preview,
  );
}

// A version's first rows and each column's type, missing and distinct counts, min and max.
async function drawPreview(box, version) {
  const found = await api(`/datastore/profile?version=${encodeURIComponent(version)}`);
  if (!found.file) return fill(box, h("p", { class: "hint" }, `No preview: ${found.why}.`));
  fill(
    box,
    h("h3", {}, "Columns of ", h("span", { class: "mono" }, found.file)),
    h(
      "p",
      { class: "hint" },
      `${found.rows_read.toLocaleString()} rows read${found.complete ? "" : " (the file is longer: its first part)"}.`,
    ),
    sideTable(
      "data-columns",
      ["Column", "Type", "Missing", "Distinct", "Min", "Max"],
      found.columns.map((c) => [
        c.name,
        c.type,
        c.missing,
        `${c.distinct}${c.distinct_capped ? "+" : ""}`,
        c.min ?? "—",
        c.max ?? "—",
      ]),
    ),
    h("h3", {}, "First rows"),
    sideTable("data-rows", found.preview.header, found.preview.rows),
  );
}

// A plain table: a header row and rows of cells, in a frame that scrolls sideways when it must.
function sideTable(id, header, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          header.map((t) => h("th", { scope: "col" }, t)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((cells) =>
          h(
            "tr",
            {},
            cells.map((cell) => h("td", {}, cell)),
          ),
        ),
      ),
    ),
  );
}

// The datastore's paths and the uploads, drawn again after an upload from the page.
async function drawLists(lists) {
  const history = h("section", { id: "data-history" });
  try {
    const [{ paths }, uploads] = await Promise.all([api("/datastore"), api("/data")]);
    fill(lists, history);
    addTo(
      lists,
      h("h2", {}, "Datastore paths"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "paths" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Path", "Data version", "Files", "Bytes", "Runs", "Versions"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            {},
            paths.map((p) =>
              h(
                "tr",
                {},
                h("td", {}, p.path),
                h("td", { class: "mono" }, digest(p.digest)),
                h("td", {}, p.files),
                h("td", {}, p.bytes.toLocaleString()),
                h("td", {}, h("a", { href: `/ui/?data_version=${encodeURIComponent(p.digest)}` }, "runs that read it")),
                h(
                  "td",
                  {},
                  h(
                    "button",
                    {
                      type: "button",
                      class: "history",
                      onclick: () => part(history, () => drawHistory(history, p.path)),
                    },
                    "History",
                  ),
                ),
              ),
            ),
            paths.length
              ? []
              : h(
                  "tr",
                  {},
                  h(
                    "td",
                    { colspan: 6, class: "hint" },
                    "No data yet. Upload a folder above, or run scripts/upload-data.py, or POST /data.",
                  ),
                ),
          ),
        ),
      ),
    );
    addTo(
      lists,
      h("h2", {}, "Uploads"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "uploads" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Upload", "Status", "Path", "Files", "Bytes", "Data version", "When"].map((t) =>
                h("th", { scope: "col" }, t),
              ),
            ),
          ),
          h(
            "tbody",
            {},
            uploads.items.map((u) =>
              h(
                "tr",
                {},
                h("td", { class: "mono" }, short(u.id, 16)),
                h("td", {}, badge(u.status)),
                h("td", {}, u.path),
                h("td", {}, u.files ?? "—"),
                h("td", {}, u.bytes?.toLocaleString() ?? "—"),
                h(
                  "td",
                  { class: "mono" },
                  u.digest
                    ? h("a", { href: `/ui/?data_version=${encodeURIComponent(u.digest)}` }, digest(u.digest))
                    : "—",
                ),
                h("td", {}, when(u.created_at)),
              ),
            ),
            uploads.items.length
              ? []
              : h(
                  "tr",
                  {},
                  h(
                    "td",
                    { colspan: 7, class: "hint" },
                    "No uploads through the service yet (scripts/upload-data.py writes to the datastore directly:" +
                      " its data shows under Datastore paths).",
                  ),
                ),
          ),
        ),
      ),
    );
  } catch (error) {
    fill(lists, failure(error));
  }
}

// -- train ---------------------------------------------------------------------------------
async function trainPage() {
  fill(app, h("h1", {}, "Train a model"));
  if (ROLE !== "full") {
    addTo(app, h("p", { class: "hint" }, "This session may only read: sign in with a full-access token to train."));
    return;
  }
  const from = new URLSearchParams(location.search).get("from");
  let scripts;
  let defaults;
  let paths;
  let before = null; // "Run again": the run whose settings fill the form
  try {
    [{ scripts, defaults }, { paths }, before] = await Promise.all([
      api("/scripts"),
      api("/datastore"),
      from ? api(`/runs/${encodeURIComponent(from)}`) : null,
    ]);
  } catch (error) {
    addTo(app, failure(error));
    return;
  }
  // Each field says what the service fills in when it is left alone (AZML_SCRIPT, AZML_DATAPATH, ...).
  const byDefault = (value) => (value ? `the service's default: ${value}` : "the service's default");
  const script = h(
    "select",
    { name: "script", id: "script" },
    h("option", { value: "" }, `(${byDefault(defaults.script)})`),
    scripts.map((s) => h("option", { value: s.name }, s.name)),
  );
  const datapath = h(
    "select",
    { name: "datapath", id: "datapath" },
    h("option", { value: "" }, `(${byDefault(defaults.datapath)})`),
    paths.map((p) => h("option", { value: p.path }, `${p.path} (${digest(p.digest)})`)),
  );
  const experiment = h("input", { name: "experiment", id: "experiment", placeholder: byDefault(defaults.experiment) });
  const compute = h("input", { name: "compute", id: "compute", placeholder: byDefault(defaults.compute) });
  const model = h("input", { name: "model", id: "model", placeholder: byDefault(defaults.model) });
  // The chosen script's own arguments (read from its argparse calls), each with its default.
  const takes = h("div", { id: "script-args", "aria-live": "polite" });
  function showArguments() {
    const chosen = scripts.find((one) => one.name === (script.value || defaults.script));
    if (!chosen) return fill(takes);
    if (chosen.arguments_error)
      return fill(takes, h("p", { class: "hint" }, `Its arguments: ${chosen.arguments_error}.`));
    const own = chosen.arguments.filter((a) => a.name !== "estimators");
    if (!own.length) return fill(takes, h("p", { class: "hint" }, `${chosen.name} takes no other argument.`));
    fill(
      takes,
      h("p", { class: "hint" }, `${chosen.name} also takes (give any below as name=value):`),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { id: "script-arguments" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Argument", "Type", "Default", "What"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            {},
            own.map((a) =>
              h(
                "tr",
                { "data-argument": a.name },
                h("td", { class: "mono" }, `${a.name}${a.required ? " (required)" : ""}`),
                h("td", {}, a.choices ? a.choices.join(" | ") : a.type),
                h("td", { class: "mono" }, a.default === null ? "—" : String(a.default)),
                h("td", {}, a.help || ""),
              ),
            ),
          ),
        ),
      ),
    );
  }
  script.addEventListener("change", showArguments);
  const estimators = h("input", { name: "estimators", id: "estimators", type: "number", min: 1, max: 100000 });
  const extra = h("textarea", { name: "args", id: "args", rows: 3, placeholder: "seed=7\none name=value per line" });
  const problem = h("div", { role: "alert" });
  if (before) {
    const choose = (select, value) => {
      if (!value) return;
      if (![...select.options].some((o) => o.value === value)) addTo(select, h("option", { value }, value));
      select.value = value;
    };
    choose(script, before.script);
    choose(datapath, before.datapath);
    experiment.value = before.experiment || "";
    model.value = before.model || "";
    compute.value = before.compute || "";
    estimators.value = before.params.estimators ?? "";
    extra.value = Object.entries(before.params.args || {})
      .map(([k, v]) => `${k}=${v}`)
      .join("\n");
    addTo(
      app,
      h(
        "p",
        { class: "hint" },
        "Filled with the settings of run ",
        h(
          "a",
          { href: `/ui/runs/${encodeURIComponent(before.id)}`, class: "mono" },
          before.backend_run_id || before.id,
        ),
        ": change what you like.",
      ),
    );
  }
  const form = h(
    "form",
    { class: "train", onsubmit: submit },
    h("label", {}, "Script", script),
    takes,
    h("label", {}, "Experiment", experiment),
    h("label", {}, "Data path", datapath),
    h("label", {}, "Model", model),
    h("label", {}, "Compute", compute),
    h("label", {}, "Estimators", estimators),
    h("label", {}, "Extra arguments", extra),
    problem,
    h("button", { type: "submit", class: "primary" }, "Start run"),
  );
  addTo(app, form);
  showArguments();
  async function submit(event) {
    event.preventDefault();
    const body = { args: {} };
    for (const [key, input] of Object.entries({ script, experiment, datapath, model, compute }))
      if (input.value.trim()) body[key] = input.value.trim();
    if (estimators.value) body.estimators = Number(estimators.value);
    for (const line of extra.value
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean)) {
      const at = line.indexOf("=");
      if (at < 1) {
        fill(problem, failure(`"${line}" is not name=value`));
        return;
      }
      body.args[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    try {
      const job = await api("/runs", { method: "POST", json: body });
      location.href = `/ui/runs/${encodeURIComponent(job.id)}`;
    } catch (error) {
      fill(problem, failure(error));
    }
  }
}

// -- the router ----------------------------------------------------------------------------
// Each page: the path it answers, what the tab says, how it is drawn. The tab names what it shows
// (chat links open many of them), the service's name after it; the server answers 404 for any other path.
const PAGES = [
  [/^\/ui(?:\/runs)?$/, () => "Runs", () => runsPage()],
  [/^\/ui\/runs\/([^/]+)$/, (id) => `Run ${id}`, (id) => runPage(id)],
  [/^\/ui\/models$/, () => "Models", () => modelsPage()],
  [/^\/ui\/models\/([^/]+)$/, (name) => `Model ${name}`, (name) => modelPage(name)],
  [/^\/ui\/data$/, () => "Data", () => dataPage()],
  [/^\/ui\/train$/, () => "Train", () => trainPage()],
  [/^\/ui\/compare$/, () => "Compare runs", () => comparePage()],
  [/^\/ui\/approvals$/, () => "Approvals", () => approvalsPage()],
  [/^\/ui\/endpoints$/, () => "Endpoints", () => endpointsPage()],
  [/^\/ui\/schedules$/, () => "Schedules", () => schedulesPage()],
  [/^\/ui\/endpoints\/([^/]+)$/, (name) => `Endpoint ${name}`, (name) => endpointPage(name)],
];

// A table wider than the screen says so above it and scrolls inside its frame (a phone at 390 px); the
// frame takes the keyboard's focus so arrow keys scroll it too.
function markWideTables() {
  for (const wrap of app.querySelectorAll(".table-wrap")) {
    const wide = wrap.scrollWidth > wrap.clientWidth + 1;
    wrap.classList.toggle("scrolls", wide);
    const hint = wrap.previousElementSibling?.classList.contains("scroll-hint") ? wrap.previousElementSibling : null;
    if (wide && !hint) {
      wrap.setAttribute("tabindex", "0");
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", "table, wider than the screen: scroll sideways");
      wrap.before(h("p", { class: "scroll-hint hint" }, "Wider than the screen: scroll the table sideways →"));
    } else if (!wide && hint) {
      hint.remove();
      for (const name of ["tabindex", "role", "aria-label"]) wrap.removeAttribute(name);
    }
  }
}
let marking = null;
const markSoon = () => {
  clearTimeout(marking);
  marking = setTimeout(markWideTables, 100);
};
new MutationObserver(markSoon).observe(app, { childList: true, subtree: true });
window.addEventListener("resize", markSoon);

function route() {
  const path = location.pathname.replace(/\/+$/, "");
  for (const [pattern, title, draw] of PAGES) {
    const found = path.match(pattern);
    if (found) {
      const value = found[1] === undefined ? undefined : decodeURIComponent(found[1]);
      document.title = `${title(value)} — AML control plane`;
      const drawn = draw(value);
      Promise.resolve(drawn).finally(() => {
        if (listening) return;
        // A version registered (a run completed with one) redraws the models pages; every page shows the dot.
        let again = null;
        listen("/events", {
          run: (job) => {
            if (!path.startsWith("/ui/models") || job.status !== "Completed" || !job.model_version) return;
            if (value !== undefined && job.model_version.name !== value) return;
            clearTimeout(again);
            again = setTimeout(() => draw(value), 300);
          },
        });
      });
      return drawn;
    }
  }
  document.title = "Not found — AML control plane";
  fill(app, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/ui/" }, "Back to the runs")));
}
route();
