// The dashboard page's script (served as /dashboard/assets/dashboard.js; no build step): polls
// the proxy's JSON endpoints every few seconds and renders them. With API keys configured the
// proxy answers 401 and the page asks for a key, kept in sessionStorage and sent as a Bearer
// token. Every text from the server goes in through textContent, never as HTML.

/* global uPlot */

const POLL_MS = 5000;
const KEY_STORAGE = "claude-openai-proxy.key";
const RECENT_ROWS = 50;
const PALETTE = ["#d97757", "#4f7cff", "#2da44e", "#bf8700", "#8250df", "#e85aad", "#1b9aaa"];

const state = {
  groupBy: "hour",
  splitBy: "model",
  charts: { tokens: null, requests: null },
  timer: undefined,
};

/** @param {string} id */
function $(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`No element #${id}`);
  return el;
}

/**
 * An element with attributes and children (strings become text nodes).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {Array<Node | string>} [children]
 */
function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  for (const child of children) el.append(child);
  return el;
}

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
/** @param {number | undefined | null} n */
function num(n) {
  return typeof n === "number" && Number.isFinite(n) ? integer.format(n) : "0";
}
/** @param {number | undefined | null} usd */
function dollars(usd) {
  const n = typeof usd === "number" ? usd : 0;
  return `$${n.toFixed(n !== 0 && n < 1 ? 4 : 2)}`;
}

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

class Unauthorized extends Error {}

/**
 * GET a JSON endpoint (relative to the page, so that the page also works under a path prefix).
 * @param {string} path
 */
async function getJson(path) {
  const key = storedKey();
  const headers = { Accept: "application/json" };
  if (key !== null) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { headers, cache: "no-store", credentials: "omit" });
  if (response.status === 401) throw new Unauthorized("The proxy requires an API key");
  if (!response.ok) {
    let message = `${path}: HTTP ${response.status}`;
    try {
      const body = await response.json();
      if (body?.error?.message) message = `${path}: ${body.error.message}`;
    } catch {
      // not JSON
    }
    throw new Error(message);
  }
  return response.json();
}

/** Shows the key prompt, with `message` as an error when given. */
function askForKey(message) {
  $("dashboard").hidden = true;
  $("key-prompt").hidden = false;
  $("forget-key").hidden = true;
  const error = $("key-error");
  error.hidden = message === undefined;
  error.textContent = message ?? "";
  $("updated").textContent = "Waiting for an API key";
  $("key-input").focus();
}

async function refresh() {
  clearTimeout(state.timer);
  const key = storedKey();
  try {
    const offset = -new Date().getTimezoneOffset();
    const [health, totals, series, recent] = await Promise.all([
      getJson("health"),
      getJson("v1/usage"),
      getJson(`v1/usage?group_by=${state.groupBy}&utc_offset=${offset}`),
      getJson(`dashboard/requests?limit=${RECENT_ROWS}`),
    ]);
    $("key-prompt").hidden = true;
    $("dashboard").hidden = false;
    $("forget-key").hidden = key === null;
    $("fetch-error").hidden = true;
    renderHealth(health);
    renderTotals(totals);
    renderSeries(series);
    renderRecent(recent.data ?? []);
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error instanceof Unauthorized) {
      if (key !== null) {
        try {
          sessionStorage.removeItem(KEY_STORAGE);
        } catch {
          // storage off
        }
      }
      askForKey(key === null ? undefined : "That key was not accepted");
      return; // polling resumes once a key is entered
    }
    const banner = $("fetch-error");
    banner.hidden = false;
    banner.textContent = `Cannot reach the proxy: ${error instanceof Error ? error.message : String(error)}`;
    $("updated").textContent = `Update failed ${new Date().toLocaleTimeString()}`;
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

function renderHealth(health) {
  const status = $("proxy-status");
  status.textContent = health.status ?? "unknown";
  status.className = `badge ${health.status === "ok" ? "ok" : health.status === "draining" ? "warn" : "bad"}`;
  $("proxy-version").textContent = health.version ? `v${health.version}` : "";
  renderWarnings(health);
  renderCli(health);
  renderProcesses(health.processes ?? {});
  renderLimits(health.limits);
}

function renderWarnings(health) {
  const list = $("warnings");
  const items = [];
  const claude = health.claude ?? {};
  if (claude.found === false || claude.error) {
    items.push(["bad", `The claude CLI cannot run: ${claude.error ?? "not found"}`]);
  }
  if (claude.warning) items.push(["warn", claude.warning]);
  if (claude.logged_in === false) {
    items.push([
      "bad",
      `The claude CLI is not logged in (a request failed for it at ${new Date(claude.checked_at).toLocaleString()}): run \`claude\` once and log in, or set CLAUDE_CODE_OAUTH_TOKEN from \`claude setup-token\``,
    ]);
  }
  const apiKey = health.anthropic_api_key ?? {};
  if (apiKey.set && apiKey.passed_to_cli) {
    items.push([
      "warn",
      "ANTHROPIC_API_KEY is set: the claude CLI bills that API key per token instead of your subscription (start the proxy with --drop-anthropic-api-key to keep it from the CLI)",
    ]);
  }
  list.replaceChildren(...items.map(([kind, text]) => h("li", { class: kind }, [text])));
}

function renderCli(health) {
  const claude = health.claude ?? {};
  const supported = {
    yes: "tested",
    newer: "newer than tested",
    older: "older than tested",
    unknown: "unknown",
  };
  $("cli-version").textContent = claude.version
    ? `${claude.version} (${supported[claude.supported] ?? claude.supported})`
    : "not found";
  const range = claude.tested_range;
  $("cli-range").textContent = range ? `${range.oldest} – ${range.newest}` : "–";
  $("cli-path").textContent = claude.path ?? "–";
  const runtime = health.runtime;
  $("runtime").textContent = runtime ? `${runtime.name} ${runtime.version}` : "–";
}

function renderProcesses(p) {
  const count = (n) => (typeof n === "number" ? n : 0);
  $("proc-busy").textContent = num(count(p.busy));
  $("proc-parked").textContent = num(count(p.parked));
  $("proc-warm").textContent = num(count(p.warm));
  $("proc-spare").textContent = num(count(p.spare));
  $("proc-queued").textContent = num(count(p.queued));
  const parts = [];
  if (typeof p.total === "number") parts.push(`${num(p.total)} CLI processes`);
  if (typeof p.running === "number") parts.push(`${num(p.running)} running`);
  if (typeof p.waiting_for_tools === "number") {
    parts.push(`${num(p.waiting_for_tools)} waiting for tool results`);
  }
  if (typeof p.max === "number") parts.push(`at most ${num(p.max)}`);
  $("proc-summary").textContent = parts.join(" · ");
}

/** A reset time (ISO string, or seconds or ms since the epoch) as a Date, or null. */
function toDate(value) {
  if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value);
  if (typeof value === "string" && value !== "") {
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }
  return null;
}

/** "in 2 h 5 min (14:05)" */
function resetText(value) {
  const date = toDate(value);
  if (date === null) return "";
  const minutes = Math.round((date.getTime() - Date.now()) / 60000);
  const when =
    date.toDateString() === new Date().toDateString()
      ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
      : date.toLocaleString([], {
          weekday: "short",
          month: "short",
          day: "numeric",
          hour: "2-digit",
          minute: "2-digit",
        });
  if (minutes <= 0) return `resets ${when}`;
  const d = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  const span = d > 0 ? `${d} d ${hours} h` : hours > 0 ? `${hours} h ${m} min` : `${m} min`;
  return `resets in ${span} (${when})`;
}

const WINDOW_NAMES = {
  five_hour: "5-hour window",
  seven_day: "7-day window",
  seven_day_opus: "7-day window (Opus)",
  seven_day_sonnet: "7-day window (Sonnet)",
  seven_day_overage_included: "7-day window (overage included)",
  overage: "Overage",
};

/** A window's name for a person ("five_hour" -> "5-hour window"). */
function windowName(type) {
  return WINDOW_NAMES[type] ?? String(type ?? "window").replaceAll("_", " ");
}

function statusClass(status) {
  if (status === "rejected") return "bad";
  if (status === "allowed_warning") return "warn";
  return "ok";
}

function renderLimits(limits) {
  const box = $("limits");
  const reported =
    limits !== undefined &&
    limits !== null &&
    (limits.updated_at != null || (limits.windows ?? []).length > 0);
  if (!reported) {
    box.replaceChildren(
      h("p", { class: "muted" }, [
        "No data yet: the limits appear once the claude CLI has reported them (after a request).",
      ]),
    );
    return;
  }
  const nodes = [];
  const overall = [
    h("span", { class: `badge ${statusClass(limits.status)}` }, [limits.status ?? "unknown"]),
  ];
  if (limits.type) overall.push(" ", h("span", {}, [windowName(limits.type)]));
  const reset = resetText(limits.resets_at);
  if (reset !== "") overall.push(" ", h("span", { class: "muted" }, [reset]));
  nodes.push(h("p", { id: "limits-status" }, overall));
  for (const window of limits.windows ?? []) {
    const name = windowName(window.type);
    const utilization = typeof window.utilization === "number" ? window.utilization : null;
    const head = h("div", { class: "window-head" }, [
      h("strong", {}, [name]),
      h("span", { class: `status-${statusClass(window.status)}` }, [window.status ?? ""]),
      h("span", { class: "spacer" }),
      h("span", { class: "utilization" }, [
        utilization === null ? "utilization unknown" : `${Math.round(utilization * 100)}% used`,
      ]),
    ]);
    const bar = h("div", { class: `bar ${statusClass(window.status)}` }, [h("span")]);
    const fill = bar.firstChild;
    if (fill instanceof HTMLElement) {
      fill.style.width = `${Math.min(100, Math.max(0, (utilization ?? 0) * 100))}%`;
    }
    nodes.push(
      h("div", { class: "window", "data-window": String(window.type ?? "") }, [
        head,
        bar,
        h("div", { class: "muted" }, [resetText(window.resets_at)]),
      ]),
    );
  }
  if (limits.overage) {
    const text = [
      `Overage: ${limits.overage.status ?? "unknown"}${limits.overage.in_use ? " (in use)" : ""}`,
    ];
    const overageReset = resetText(limits.overage.resets_at);
    if (overageReset !== "") text.push(`, ${overageReset}`);
    nodes.push(h("p", { id: "limits-overage" }, [text.join("")]));
  }
  const updated = toDate(limits.updated_at);
  if (updated !== null) {
    nodes.push(h("p", { class: "muted" }, [`Reported ${updated.toLocaleString()}`]));
  }
  box.replaceChildren(...nodes);
}

function renderTotals(totals) {
  $("total-requests").textContent = num(totals.requests);
  $("total-prompt").textContent = num(totals.prompt_tokens);
  $("total-completion").textContent = num(totals.completion_tokens);
  $("total-cached").textContent = num(totals.cached_tokens);
  $("total-cost").textContent = dollars(totals.cost_usd);
  $("usage-since").textContent = totals.since
    ? `since ${new Date(totals.since).toLocaleString()}`
    : "no requests recorded yet";
  for (const [id, map] of [
    ["by-model", totals.by_model],
    ["by-surface", totals.by_surface],
  ]) {
    const rows = Object.entries(map ?? {}).map(([name, f]) =>
      h("tr", {}, [
        h("td", {}, [name]),
        h("td", { class: "num" }, [num(f.requests)]),
        h("td", { class: "num" }, [num(f.prompt_tokens)]),
        h("td", { class: "num" }, [num(f.completion_tokens)]),
        h("td", { class: "num" }, [dollars(f.cost_usd)]),
      ]),
    );
    if (rows.length === 0)
      rows.push(h("tr", {}, [h("td", { colspan: "5", class: "muted" }, ["None yet"])]));
    $(id)
      .querySelector("tbody")
      .replaceChildren(...rows);
  }
}

/** The keys (models or surfaces) that occur in a series, sorted. */
function seriesKeys(buckets, field) {
  const keys = new Set();
  for (const bucket of buckets) for (const key of Object.keys(bucket[field] ?? {})) keys.add(key);
  return [...keys].sort();
}

function renderSeries(series) {
  const buckets = series.buckets ?? [];
  const field = state.splitBy === "model" ? "by_model" : "by_surface";
  const keys = seriesKeys(buckets, field);
  const per = state.groupBy === "hour" ? "hour" : "day";
  $("tokens-caption").textContent = `Tokens per ${per} (prompt + completion)`;
  $("requests-caption").textContent = `Requests per ${per}`;
  const x = buckets.map((b) => Date.parse(b.start) / 1000);
  const column = (metric) => keys.map((key) => buckets.map((b) => b[field]?.[key]?.[metric] ?? 0));
  drawChart("tokens", x, keys, column("total_tokens"));
  drawChart("requests", x, keys, column("requests"));

  $("series-split-head").textContent = state.splitBy === "model" ? "Model" : "Surface";
  const rows = [];
  for (const bucket of buckets) {
    const start = new Date(bucket.start);
    const label =
      state.groupBy === "hour"
        ? start.toLocaleString([], {
            month: "short",
            day: "numeric",
            hour: "2-digit",
            minute: "2-digit",
          })
        : start.toLocaleDateString([], { month: "short", day: "numeric" });
    for (const [key, f] of Object.entries(bucket[field] ?? {})) {
      rows.push(
        h("tr", { "data-start": bucket.start, "data-key": key }, [
          h("td", {}, [label]),
          h("td", {}, [key]),
          h("td", { class: "num" }, [num(f.requests)]),
          h("td", { class: "num" }, [num(f.prompt_tokens)]),
          h("td", { class: "num" }, [num(f.completion_tokens)]),
        ]),
      );
    }
  }
  if (rows.length === 0)
    rows.push(
      h("tr", {}, [h("td", { colspan: "5", class: "muted" }, ["No usage in this period"])]),
    );
  $("series-table")
    .querySelector("tbody")
    .replaceChildren(...rows);
}

/**
 * Draws (or updates) a stacked bar chart: series i is drawn at the sum of series 0..i, tallest
 * first, so that each visible band is one key; the legend shows each key's own value.
 */
function drawChart(name, x, keys, columns) {
  const container = $(`${name}-chart`);
  const stacked = [];
  let running = x.map(() => 0);
  for (const column of columns) {
    running = running.map((v, i) => v + (column[i] ?? 0));
    stacked.push(running);
  }
  // Drawn from the top of the stack down, so that each band stays visible.
  const order = keys.map((_, i) => keys.length - 1 - i);
  const data = [x, ...order.map((i) => stacked[i])];
  const signature = `${state.groupBy}|${keys.join(",")}`;
  const width = Math.max(300, container.clientWidth);
  const existing = state.charts[name];
  if (existing !== null && existing.signature === signature) {
    existing.columns = columns;
    existing.plot.setData(data);
    return;
  }
  existing?.plot.destroy();
  const entry = { signature, columns, plot: null };
  const barWidth = state.groupBy === "hour" ? [0.8, 24] : [0.7, 48];
  const opts = {
    width,
    height: 240,
    legend: { live: true },
    cursor: { points: { show: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [
      { stroke: getComputedStyle(document.body).color, grid: { show: false } },
      {
        stroke: getComputedStyle(document.body).color,
        size: 60,
        values: (_u, ticks) => ticks.map((t) => integer.format(t)),
      },
    ],
    series: [
      {},
      ...order.map((i) => ({
        label: keys[i],
        stroke: PALETTE[i % PALETTE.length],
        fill: PALETTE[i % PALETTE.length],
        width: 0,
        paths: uPlot.paths.bars({ size: barWidth, align: 0 }),
        points: { show: false },
        value: (_u, _v, _seriesIdx, idx) =>
          idx === null || idx === undefined ? "–" : integer.format(entry.columns[i]?.[idx] ?? 0),
      })),
    ],
  };
  if (keys.length === 0) {
    opts.series.push({ label: "no usage", stroke: "transparent", points: { show: false } });
    data.push(x.map(() => 0));
  }
  container.replaceChildren();
  entry.plot = new uPlot(opts, data, container);
  state.charts[name] = entry;
}

function renderRecent(requests) {
  const rows = requests.map((r) =>
    h("tr", { "data-request-id": r.request_id ?? "" }, [
      h("td", {}, [new Date(r.time).toLocaleTimeString()]),
      h("td", {}, [r.surface ?? ""]),
      h("td", {}, [r.model ?? ""]),
      h("td", { class: r.status === 200 ? "status-ok" : "status-bad" }, [
        r.code ? `${r.status} ${r.code}` : String(r.status),
      ]),
      h("td", { class: "num" }, [num(r.duration_ms)]),
      h("td", { class: "num" }, [num(r.prompt_tokens)]),
      h("td", { class: "num" }, [num(r.completion_tokens)]),
    ]),
  );
  if (rows.length === 0)
    rows.push(h("tr", {}, [h("td", { colspan: "7", class: "muted" }, ["None yet"])]));
  $("recent")
    .querySelector("tbody")
    .replaceChildren(...rows);
}

function resize() {
  for (const name of ["tokens", "requests"]) {
    const chart = state.charts[name];
    if (chart?.plot) {
      chart.plot.setSize({ width: Math.max(300, $(`${name}-chart`).clientWidth), height: 240 });
    }
  }
}

function start() {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("key-input");
    const key = input.value.trim();
    if (key === "") return;
    try {
      sessionStorage.setItem(KEY_STORAGE, key);
    } catch {
      // storage off: the key lasts only as long as this page
    }
    input.value = "";
    void refresh();
  });
  $("forget-key").addEventListener("click", () => {
    try {
      sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // storage off
    }
    clearTimeout(state.timer);
    askForKey();
  });
  $("group-by").addEventListener("change", (event) => {
    state.groupBy = event.target.value === "day" ? "day" : "hour";
    void refresh();
  });
  $("split-by").addEventListener("change", (event) => {
    state.splitBy = event.target.value === "surface" ? "surface" : "model";
    void refresh();
  });
  window.addEventListener("resize", resize);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) void refresh();
  });
  void refresh();
}

start();
