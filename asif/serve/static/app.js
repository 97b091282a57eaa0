// The web page over `asif serve`: every answer with the anchor pairs behind it.
// Plain DOM code, no build step; it calls the service's public endpoints (see /docs).
"use strict";

const POLL_MS = 3000; // how often the served version is checked
const EXPLAIN_TOP = 8; // anchor pairs shown per explanation
const SEARCH_TOP = 12;
const TOKEN_KEY = "asif-token";

const $ = (id) => document.getElementById(id);
const state = { file: null, version: null, thumbnails: false, fields: null };
const thumbnailUrls = new Map(); // "version/id" -> object URL

// ------------------------------------------------------------------ the API
function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function detailText(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
  }
  return `the service answered ${status}`;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
  } catch (err) {
    throw new Error("cannot reach the service");
  }
  if (response.ok) return response;
  let body = null;
  try { body = await response.json(); } catch (err) { /* not JSON */ }
  if (response.status === 401) {
    $("access").open = true;
    throw new Error("this service needs an access token: enter it under \"Access token\"");
  }
  throw new Error(detailText(body, response.status));
}

const getJson = async (path) => (await api(path)).json();

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

async function guarded(work) {
  try {
    showError(null);
    await work();
  } catch (err) {
    showError(err);
  }
}

// ------------------------------------------------------------ served model
function formatNumber(n) { return Number(n).toLocaleString("en"); }

// Scores after the p-th power span many decades: small ones in exponent form, never "0.0000".
function formatScore(x) {
  if (x === 0) return "0";
  return Math.abs(x) < 1e-3 ? x.toExponential(2) : x.toFixed(4);
}

async function pollVersion() {
  let info;
  try {
    info = await getJson("version");
  } catch (err) {
    $("status").textContent = `Not connected: ${err.message}`;
    return;
  }
  const moved = state.version !== null && info.version !== state.version;
  const tags = info.tags.length ? ` · tag ${info.tags.join(", ")}` : "";
  $("status").textContent =
    `Version ${info.version}${tags} · ${formatNumber(info.anchors)} anchors · ` +
    `${info.image_encoder} + ${info.text_encoder} · k ${info.k}, p ${info.p}`;
  if (moved) {
    for (const url of thumbnailUrls.values()) URL.revokeObjectURL(url); // shown ones stay shown
    thumbnailUrls.clear();
    const notice = $("version-notice");
    notice.textContent = `Now serving version ${info.version} (was ${state.version}); ` +
      "answers shown before are from the earlier version.";
    notice.hidden = false;
  }
  if (sessionStorage.getItem(TOKEN_KEY)) $("access").open = false;
  const first = state.version === null;
  state.version = info.version;
  state.thumbnails = info.thumbnails;
  if (first || moved) loadEvaluations().catch(showError);
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`;
}

async function loadEvaluations() {
  const { evaluations } = await getJson("evaluations?limit=10");
  const table = $("evaluations");
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const row of evaluations) {
    const top1 = row.acc1 ?? row.image_retrieval_recall_at_1;
    const retrieval = row.acc1 === null && row.image_retrieval_recall_at_1 !== null;
    const when = row.evaluated_at ? new Date(row.evaluated_at).toLocaleString() : "–";
    const cells = [
      row.table_tags ? `${row.table_version} (${row.table_tags})` : String(row.table_version),
      row.split ? `${row.benchmark} (${row.split})` : row.benchmark,
      row.n_images === null ? "–" : formatNumber(row.n_images),
      retrieval ? `${percent(top1)} R@1` : percent(top1),
      percent(row.acc5),
      `${row.k ?? "–"} / ${row.p ?? "–"}`,
      when,
    ];
    const tr = document.createElement("tr");
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
  table.hidden = evaluations.length === 0;
  $("evaluations-empty").hidden = evaluations.length > 0;
}

// ------------------------------------------------------------------ images
function chooseFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError(new Error(`${file.name} is not an image`));
    return;
  }
  state.file = file;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-text").textContent = file.name;
  showError(null);
}

function setUpDropZone() {
  const zone = $("drop-zone");
  $("image-input").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    chooseFile(e.dataTransfer.files[0]);
  });
}

async function thumbnailUrl(anchorId) {
  const key = `${state.version}/${anchorId}`;
  if (!thumbnailUrls.has(key)) {
    const response = await api(`anchors/${encodeURIComponent(anchorId)}/thumbnail`);
    thumbnailUrls.set(key, URL.createObjectURL(await response.blob()));
  }
  return thumbnailUrls.get(key);
}

// ------------------------------------------------------------ anchor cards
function anchorCard(anchor, note) {
  const item = document.createElement("li");
  item.className = "anchor";
  item.dataset.anchorId = anchor.anchor_id;
  const picture = document.createElement("div");
  picture.className = "picture";
  const fallback = () => {
    picture.replaceChildren();
    picture.classList.add("no-thumbnail");
    picture.textContent = "no thumbnail";
  };
  if (state.thumbnails) {
    const img = document.createElement("img");
    img.alt = anchor.caption;
    picture.append(img);
    thumbnailUrl(anchor.anchor_id).then((url) => { img.src = url; }, fallback);
  } else {
    fallback();
  }
  const caption = document.createElement("p");
  caption.className = "caption";
  caption.textContent = anchor.caption;
  const share = document.createElement("p");
  share.className = "share";
  share.textContent = note;
  item.append(picture, caption, share);
  if (anchor.url) item.append(urlElement(anchor.url));
  item.append(anchorDetails(anchor.anchor_id));
  return item;
}

// An anchor's url is data from the table: a link only when it is http(s), else plain text
// (a "javascript:" url must never become a clickable link).
function urlElement(url) {
  let web = false;
  try { web = ["http:", "https:"].includes(new URL(url).protocol); } catch (err) { /* not a URL */ }
  const element = document.createElement(web ? "a" : "span");
  element.className = "url";
  element.textContent = url;
  if (web) {
    element.href = url;
    element.rel = "noopener noreferrer";
    element.target = "_blank";
  }
  return element;
}

function anchorDetails(anchorId) {
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "Source";
  const text = document.createElement("p");
  details.append(summary, text);
  details.addEventListener("toggle", () => {
    if (!details.open || text.textContent) return;
    getJson(`anchors/${encodeURIComponent(anchorId)}`).then((a) => {
      const size = a.width && a.height ? `${a.width} × ${a.height} px` : "size unknown";
      text.textContent = `${size}, shard ${a.shard || "–"}, id ${a.anchor_id}`;
    }, (err) => { text.textContent = err.message; });
  });
  return details;
}

// ----------------------------------------------------------------- classify
function classifyFields() {
  const labels = $("labels").value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!state.file) throw new Error("choose an image first");
  if (!labels.length) throw new Error("type at least one label");
  const templates = $("templates").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const threshold = $("threshold").value.trim();
  return { labels, templates, strategy: $("strategy").value, threshold };
}

function form(fields, extra) {
  const data = new FormData();
  data.append("image", state.file, state.file.name);
  for (const label of fields.labels) data.append("labels", label);
  for (const template of fields.templates) data.append("templates", template);
  data.append("strategy", fields.strategy);
  for (const [key, value] of Object.entries(extra)) data.append(key, value);
  return data;
}

async function classify() {
  const fields = classifyFields();
  const extra = { top: String(Math.min(fields.labels.length, 100)) };
  if (fields.threshold !== "") extra.threshold = fields.threshold;
  const button = $("classify-button");
  button.disabled = true;
  try {
    const answer = await (await api("classify", { method: "POST", body: form(fields, extra) })).json();
    state.fields = fields;
    showAnswer(answer, fields.threshold === "" ? null : Number(fields.threshold));
    await explain(answer.label === "unknown" ? answer.top[0].label : answer.label);
  } finally {
    button.disabled = false;
  }
}

function showAnswer(answer, threshold) {
  const heading = $("answer");
  heading.textContent = answer.label === "unknown"
    ? `unknown: the best score, ${formatScore(answer.score)} (${answer.top[0].label}), is below ${threshold}`
    : `${answer.label} (score ${formatScore(answer.score)}, version ${answer.version})`;
  const list = $("scores");
  list.replaceChildren();
  const best = Math.max(...answer.top.map((t) => t.score), 1e-12);
  for (const { label, score } of answer.top) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "bar";
    button.dataset.label = label;
    button.setAttribute("aria-pressed", "false");
    const below = threshold !== null && score < threshold;
    if (below) button.classList.add("below");
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = label;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${Math.max(0, (100 * score) / best)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = formatScore(score) + (below ? " (below threshold)" : "");
    button.append(name, track, value);
    button.addEventListener("click", () => guarded(() => explain(label)));
    item.append(button);
    list.append(item);
  }
  $("result-empty").hidden = true;
  $("result-body").hidden = false;
  heading.focus({ preventScroll: true });
  // one column (a phone): bring the answer up instead of leaving it at the bottom edge
  if (heading.getBoundingClientRect().top > window.innerHeight / 2) heading.scrollIntoView();
}

async function explain(label) {
  const fields = state.fields;
  const extra = { label, top: String(EXPLAIN_TOP) };
  const ex = await (await api("explain", { method: "POST", body: form(fields, extra) })).json();
  for (const button of $("scores").querySelectorAll("button.bar")) {
    button.setAttribute("aria-pressed", String(button.dataset.label === label));
  }
  $("explanation-title").textContent = `Why "${ex.label}": score ${formatScore(ex.score)}`;
  $("explanation-prompt").textContent = ex.anchors.length
    ? `Prompt "${ex.prompt}". The anchor pairs that gave most of it, r_i(image) × r_i(text):`
    : `Prompt "${ex.prompt}". No anchor pair is near both the image and this label.`;
  const list = $("anchors");
  list.replaceChildren(...ex.anchors.map((a) => {
    const share = ex.score > 0 ? a.contribution / ex.score : 0;
    return anchorCard(a, `${(100 * share).toFixed(1)}% of the score`);
  }));
}

// ------------------------------------------------------------------- search
async function search() {
  const text = $("query").value.trim();
  if (!text) throw new Error("type a text to search for");
  const body = JSON.stringify({ text, top: SEARCH_TOP });
  const answer = await (await api("retrieve/anchors", {
    method: "POST", body, headers: { "Content-Type": "application/json" },
  })).json();
  const list = $("search-results");
  list.replaceChildren(...answer.anchors.map((a) => anchorCard(a, `weight ${formatScore(a.weight)}`)));
  if (!answer.anchors.length) {
    const item = document.createElement("li");
    item.className = "hint";
    item.textContent = "No anchor is near this text.";
    list.append(item);
  }
}

// -------------------------------------------------------------------- start
function start() {
  setUpDropZone();
  $("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    state.version = null;
    guarded(pollVersion);
  });
  $("classify-form").addEventListener("submit", (e) => { e.preventDefault(); guarded(classify); });
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); guarded(search); });
  pollVersion();
  setInterval(pollVersion, POLL_MS);
}

start();
