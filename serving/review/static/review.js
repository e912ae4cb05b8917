// Ankang review page: plain JS over /v1/review. One keypress per decision; the next case is focused.
"use strict";

const API = "/v1/review";
const state = { items: [], selected: 0, total: 0, offset: 0, taxonomy: {}, order: [], heat: null, heatTypes: [],
                busy: false, dueHours: {}, flash: null };
const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, { dataset = {}, style = "", ...props } = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.dataset, dataset);
  if (style) node.style.cssText = style;
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
};
const label = (id) => (state.taxonomy[id] ? `${state.taxonomy[id].name_zh} ${state.taxonomy[id].name_en}` : id);
const percent = (p) => `${Math.round(p * 100)}%`;
const STATUS_ZH = { open: "待复核", clear: "未标记", confirmed: "确认", corrected: "更正", dismissed: "驳回", rectified: "已整改" };
const TRIAGE_ZH = { urgent: "紧急", review: "复核", clear: "无" };
const DECISION_ZH = { confirm: "确认 confirmed", correct: "更正 corrected", dismiss: "驳回 dismissed", rectified: "已整改 rectified" };
const WEAK_FLAG = 0.5;  // a flag below this probability is a hint to look, not a finding: drawn as "可能 maybe"
const hazardZh = (id) => (state.taxonomy[id] ? state.taxonomy[id].name_zh : id);
// Keys for the correction choices: 1-9, 0 for the tenth, Shift+1..Shift+6 for the eleventh to sixteenth.
const choiceKey = (i) => (i < 9 ? String(i + 1) : i === 9 ? "0" : `⇧${i - 9}`);
function choiceIndex(event) {
  const digit = /^Digit(\d)$/.exec(event.code || "");
  if (!digit) return /^[0-9]$/.test(event.key) ? (event.key === "0" ? 9 : Number(event.key) - 1) : -1;
  const n = Number(digit[1]);
  if (event.shiftKey) return n >= 1 ? 9 + n : -1;
  return n === 0 ? 9 : n - 1;
}
// The hazards a case stands for now: an officer's correction replaces the model's flags.
const shownTypes = (item) => (item.decided_hazards ? item.decided_hazards : item.flagged.map((f) => f.type));
// A suspected-major (疑似重大) case is due within the policy's hours of its report.
function deadline(item) {
  const hours = state.dueHours["疑似重大"];
  if (item.triage !== "urgent" || !hours) return null;
  return new Date(new Date(item.created_at).getTime() + hours * 3600 * 1000);
}
function remaining(due) {
  const hours = (due.getTime() - Date.now()) / 3600000;
  const span = Math.abs(hours) < 48 ? `${Math.round(Math.abs(hours))} 小时 h` : `${Math.round(Math.abs(hours) / 24)} 天 days`;
  return hours >= 0 ? `剩余 ${span} left` : `已超时 ${span} overdue`;
}
const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "Asia/Shanghai";
const pad = (n) => String(n).padStart(2, "0");
// The server keeps UTC (ISO 8601 with Z); officers read their own clock: YYYY-MM-DD HH:mm in the browser's zone.
const localTime = (iso) => {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return iso || "";
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())} ${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
};
const triage = (level) => (TRIAGE_ZH[level] ? `${TRIAGE_ZH[level]} ${level}` : level);
const who = (reviewer, legacy) => {
  if (!reviewer) return legacy || "";
  const key = `key:${reviewer.key_id}`;
  return reviewer.holder ? `${reviewer.holder} [${key}]` : (legacy ? `${legacy} (未验证 unverified)` : key);
};

function cookie(name) {
  const match = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : null;
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const csrf = cookie("ankang_csrf");  // review-page sessions (serving/auth.py) echo this token
  if (csrf && options.method === "POST") headers["X-CSRF-Token"] = csrf;
  const response = await fetch(API + path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body.error || { field: "", message: `HTTP ${response.status}` };
    throw new Error(`${error.field ? error.field + ": " : ""}${error.message}`);
  }
  return body;
}

function filters() {
  const params = new URLSearchParams(location.search);
  for (const key of [...params.keys()]) if (!params.get(key)) params.delete(key);
  return params;
}

function fillFilterForm() {
  const form = $("#filters");
  const hazardSelect = form.elements.hazard;
  for (const id of state.order) hazardSelect.append(el("option", { value: id, textContent: label(id) }));
  for (const [key, value] of filters()) if (form.elements[key]) form.elements[key].value = value;
}

async function loadQueue({ append = false, keepSelection = false } = {}) {
  const params = filters();
  params.set("offset", append ? String(state.items.length) : "0");
  params.set("tz", TIME_ZONE);  // YYYY-MM-DD filters mean the officer's days, not UTC's
  const page = await api(`/queue?${params}`);
  const summary = $("#queue-summary");
  summary.classList.remove("error");
  summary.removeAttribute("role");
  state.items = append ? state.items.concat(page.items) : page.items;
  state.total = page.total;
  if (!append && !keepSelection) state.selected = 0;
  renderCounts(page.counts, params.get("status") || "open");
  renderQueue();
  await showSelected();
}

function renderCounts(counts, active) {
  const nav = $("#counts");
  nav.replaceChildren(...Object.entries(counts).map(([status, n]) => {
    const params = filters();
    params.set("status", status);
    return el("a", { href: `?${params}`, className: status === active ? "active" : "",
                     textContent: `${STATUS_ZH[status] || status} ${status} · ${n}`, dataset: { status } });
  }));
}

function flagBadges(item) {
  if (item.decided_hazards) {  // corrected: the officer's labels, not the model's
    return item.decided_hazards.map((id) => el("span", { className: "badge corrected" + (state.taxonomy[id]?.severity === "疑似重大" ? " major" : ""),
      textContent: `${hazardZh(id)} ✓`, title: `更正为 corrected to ${label(id)}` }));
  }
  return item.flagged.map((f) => {
    const weak = f.probability < WEAK_FLAG;
    return el("span", { className: "badge" + (f.severity === "疑似重大" ? " major" : "") + (weak ? " weak" : ""),
      textContent: `${weak ? "可能 " : ""}${f.name_zh} ${percent(f.probability)}`,
      title: weak ? `低概率标记，请核实 a low-probability flag: look before deciding` : label(f.type) });
  });
}

function caseItem(item, index) {
  const flagged = flagBadges(item);
  const group = item.group_size > 1 ? ` · 同组 ${item.group_size}` : "";
  const due = deadline(item);
  const status = item.status === "open" ? (TRIAGE_ZH[item.triage] === "紧急" ? "" : "待复核 review") : `${STATUS_ZH[item.status] || item.status} ${item.status}`;
  const urgent = due && ["open", "confirmed", "corrected"].includes(item.status)
    ? el("div", { className: "urgent-line", textContent: `紧急 URGENT · 期限 due ${localTime(due.toISOString())} · ${remaining(due)}` })
    : null;
  const node = el("li", { className: `case ${item.triage}`, tabIndex: -1,
                          dataset: { photoId: item.photo_id, status: item.status, index } },
    el("img", { src: `${API}/${item.photo_id}/thumb`, alt: "", loading: "lazy", width: 72, height: 54 }),
    el("div", { className: "what" }, urgent, ...(flagged.length ? flagged : [el("span", { className: "badge", textContent: "无标记 none" })]),
      el("div", { className: "sub", textContent: [status, item.metadata.site_id || "—", localTime(item.created_at)].filter(Boolean).join(" · ") + group })));
  node.addEventListener("click", () => select(index));
  return node;
}

function renderQueue() {
  $("#queue").replaceChildren(...state.items.map(caseItem));
  $("#queue-summary").textContent = `${state.total} 例 cases · 显示 showing ${state.items.length}`;
  $("#more").hidden = state.items.length >= state.total;
}

async function select(index) {
  if (!state.items.length) return;
  state.selected = Math.max(0, Math.min(index, state.items.length - 1));
  await showSelected();
}

function probabilityRows(item) {
  const flagged = new Set(item.flagged.map((f) => f.type));
  return Object.entries(item.hazards).sort((a, b) => b[1] - a[1]).map(([id, p]) => {
    const major = state.taxonomy[id] && state.taxonomy[id].severity === "疑似重大";
    return el("tr", { className: flagged.has(id) ? "flagged" : "" },
      el("td", { textContent: label(id) }), el("td", { textContent: percent(p) }),
      el("td", {}, el("div", { className: "bar" }, el("span", { className: major ? "major" : "", style: `width:${Math.round(p * 100)}%` }))));
  });
}

function detectionBoxes(view, item) {
  const layer = $(".boxes", view), toggles = $(".box-toggles", view);
  const boxes = item.detections.map((d) => {
    const [x0, y0, x1, y1] = d.box;
    const style = `left:${(100 * x0) / item.width}%;top:${(100 * y0) / item.height}%;` +
      `width:${(100 * (x1 - x0)) / item.width}%;height:${(100 * (y1 - y0)) / item.height}%`;
    return el("div", { className: "box", style, dataset: { type: d.type }, title: `${label(d.type)} ${percent(d.score)}` },
      el("span", { textContent: `${state.taxonomy[d.type]?.name_zh || d.type} ${percent(d.score)}` }));
  });
  layer.replaceChildren(...boxes);
  const types = [...new Set(item.detections.map((d) => d.type))];
  const show = (type, visible) => {
    for (const box of boxes) if (box.dataset.type === type) box.hidden = !visible;
    const button = toggles.querySelector(`[data-type="${type}"]`);
    if (button) button.setAttribute("aria-pressed", String(visible));
  };
  toggles.replaceChildren(...types.map((type) => el("button", {
    type: "button", textContent: `检测框 ${label(type)}`, dataset: { type },
    onclick: (event) => show(type, event.currentTarget.getAttribute("aria-pressed") !== "true") })));
  types.forEach((type) => show(type, true));
  return { types, toggleAll: () => { const on = boxes.some((box) => box.hidden); types.forEach((type) => show(type, on)); } };
}

function heatTabs(view, item, boxedTypes) {
  const tabs = $(".heat-tabs", view), heat = $(".heat", view);
  // Boxes say where a person-level hazard is; the heatmap stays for scene hazards (fire, wet floor, clutter).
  const types = item.has_cam ? item.flagged.map((f) => f.type).filter((type) => !boxedTypes.includes(type)) : [];
  const show = (type) => {
    state.heat = type;
    heat.hidden = !type;
    if (type) heat.src = `${API}/${item.photo_id}/heatmap/${type}`;
    for (const button of tabs.children) button.setAttribute("aria-selected", String(button.dataset.type === (type || "")));
  };
  tabs.replaceChildren(el("button", { type: "button", textContent: "原图 photo", dataset: { type: "" }, onclick: () => show(null) }),
    ...types.map((type) => el("button", { type: "button", textContent: `热力图 ${label(type)}`, dataset: { type }, onclick: () => show(type) })));
  show(types[0] || null);
  state.heatTypes = types;  // `h` cycles through these tabs only
  return show;
}

async function showSelected() {
  document.querySelectorAll(".case.selected").forEach((node) => node.classList.remove("selected"));
  const item = state.items[state.selected];
  const detail = $("#detail");
  if (!item) {
    detail.replaceChildren(el("p", { className: "empty", textContent: "队列为空。 The queue is empty." }));
    return;
  }
  const node = $(`.case[data-index="${state.selected}"]`);
  if (node) { node.classList.add("selected"); node.scrollIntoView({ block: "nearest", inline: "nearest" }); }
  const view = $("#detail-template").content.cloneNode(true);
  $(".photo", view).src = `${API}/${item.photo_id}/photo`;
  const types = shownTypes(item);
  $(".title", view).textContent = (types.length ? types.map(label).join(" · ") : "无标记 No hazard flagged") +
    (item.decided_hazards ? " （已更正 corrected）" : "");
  $(".meta", view).textContent = `${triage(item.triage)} · ${item.model.name} ${item.model.version} · 站点 site ${item.metadata.site_id || "—"} · ${localTime(item.created_at)}` +
    (item.metadata.note ? ` · ${item.metadata.note}` : "");
  const due = deadline(item);
  const banner = $(".urgent-banner", view);
  if (due) {
    banner.hidden = false;
    banner.textContent = `紧急：疑似重大隐患，须在 ${localTime(due.toISOString())} 前处理（${remaining(due)}） · ` +
      `Urgent: suspected major hazard, due by ${localTime(due.toISOString())}`;
  }
  const issue = $(".issue-order", view);
  if (["confirmed", "corrected"].includes(item.status)) {
    issue.hidden = false;
    issue.href = `/orders/new?photo_id=${encodeURIComponent(item.photo_id)}`;
  }
  $(".probs tbody", view).replaceChildren(...probabilityRows(item));
  $(".group-size", view).textContent = item.group_size > 1 ? `(${item.group_size})` : "(1)";
  $(".choices", view).replaceChildren(...state.order.map((id, i) => el("label", {},
    el("kbd", { textContent: choiceKey(i) }), " ",
    el("input", { type: "checkbox", value: id, checked: types.includes(id) }), ` ${label(id)}`)));
  detail.replaceChildren(view);
  state.boxes = detectionBoxes(detail, item);
  state.showHeat = heatTabs(detail, item, state.boxes.types);
  detail.querySelectorAll(".actions button").forEach((button) => button.addEventListener("click", () => decide(button.dataset.decision)));
  $(".save-correct", detail).addEventListener("click", () => decide("correct", { save: true }));
  preloadNext();
  loadHistory(item.photo_id);
}

function preloadNext() {
  const next = state.items[state.selected + 1];
  if (next) new Image().src = `${API}/${next.photo_id}/photo`;
}

async function loadHistory(photoId) {
  const body = await api(`/${photoId}`).catch(() => null);
  const list = $("#detail .history");
  if (!body || !list || state.items[state.selected]?.photo_id !== photoId) return;
  const others = body.group.filter((member) => member.photo_id !== photoId);
  $("#detail .group-members").replaceChildren(...others.map((member) => el("img", {
    src: `${API}/${member.photo_id}/thumb`, alt: member.status, title: `${STATUS_ZH[member.status] || ""} ${member.status}`,
    className: `member ${member.status}`, width: 64, height: 48 })));
  list.replaceChildren(...body.history.map((h) => el("li", {
    title: h.created_at,
    textContent: `${localTime(h.created_at)} ${who(h.reviewer, h.legacy_reviewer)}: ${DECISION_ZH[h.decision] || h.decision}${h.hazards.length ? " [" + h.hazards.map(label).join(", ") + "]" : ""}` +
      `${h.comment ? " — " + h.comment : ""}${h.via_photo_id ? " (同组 via group)" : ""}` })));
}

function message(text, isError = false) {
  const node = $("#detail .message");
  if (node) { node.textContent = text; node.classList.toggle("error", isError); }
}

async function decide(decision, { save = false } = {}) {
  const panel = $("#detail .correct-panel");
  if (decision === "correct" && !save) {
    panel.hidden = false;
    return;
  }
  if (state.busy) return;
  const item = state.items[state.selected];
  const body = { decision, comment: $("#detail .comment").value || undefined,
                 apply_to_group: $("#detail .apply-group").checked };
  if (decision === "correct") body.hazards = [...panel.querySelectorAll("input:checked")].map((input) => input.value);
  state.busy = true;
  try {
    const result = await api(`/${item.photo_id}`, { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" } });
    afterDecision(result);
    if (["confirmed", "corrected"].includes(result.status)) flashIssue(item, result.status);
  } catch (error) {
    message(error.message, true);
  } finally {
    state.busy = false;
  }
}

function afterDecision(result) {
  const status = filters().get("status") || "open";
  const decided = new Set(result.applied_to);
  if (status === "open" || status === "clear") {
    state.items = state.items.filter((item) => !decided.has(item.photo_id));
    state.total -= decided.size;
  } else {
    for (const item of state.items) if (decided.has(item.photo_id)) item.status = result.status;
  }
  renderQueue();
  bumpCounts(status, result.status, decided.size);
  if (state.items.length - state.selected < 5 && state.items.length < state.total) {
    loadQueue({ append: true, keepSelection: true });  // keep a reviewer going past the first page
  } else {
    showSelected();
  }
}

// After a confirmation the case leaves the open queue: the way on to its order stays in reach.
function flashIssue(item, status) {
  const node = $("#flash");
  node.hidden = false;
  const title = shownTypes(item).map(hazardZh).join("、") || item.photo_id.slice(0, 8);
  node.replaceChildren(`${STATUS_ZH[status]} ${status}: ${title} · `,
    el("a", { href: `/orders/new?photo_id=${encodeURIComponent(item.photo_id)}`, className: "issue-link",
              textContent: "下达整改单 Issue a rectification order →" }));
}

function bumpCounts(from, to, n) {
  for (const link of document.querySelectorAll("#counts a")) {
    const [, count] = link.textContent.split(" · ");
    const delta = (link.dataset.status === to ? n : 0) - (link.dataset.status === from ? n : 0);
    if (delta) link.textContent = link.textContent.replace(/ · \d+$/, ` · ${Number(count) + delta}`);
  }
}

function toggleChoice(index) {
  const input = $(`#detail .choices label:nth-child(${index + 1}) input`);
  if (input) input.checked = !input.checked;
}

function onKey(event) {
  if (event.target.matches("input:not([type=checkbox]), select, textarea, a") || event.ctrlKey || event.metaKey || event.altKey) return;
  const panelOpen = $("#detail .correct-panel") && !$("#detail .correct-panel").hidden;
  const actions = {
    j: () => select(state.selected + 1), k: () => select(state.selected - 1),
    c: () => decide("confirm"), x: () => decide("correct"), d: () => decide("dismiss"), r: () => decide("rectified"),
    g: () => { const box = $("#detail .apply-group"); if (box) box.checked = !box.checked; },
    b: () => state.boxes && state.boxes.toggleAll(),
    h: () => { const types = state.heatTypes;  // only the types that have a tab: the photo, then each heatmap
               const i = types.indexOf(state.heat); state.showHeat && state.showHeat(types[i + 1] || null); },
  };
  const choice = panelOpen ? choiceIndex(event) : -1;
  if (choice >= 0) { toggleChoice(choice); event.preventDefault(); return; }
  if (panelOpen && event.key === "Enter") { decide("correct", { save: true }); event.preventDefault(); return; }
  if (panelOpen && event.key === "Escape") { $("#detail .correct-panel").hidden = true; return; }
  const action = actions[event.key];
  if (action) { event.preventDefault(); action(); }
}

// A refused filter (a date such as 2026-13-45) says why, instead of looking like an empty queue.
function showQueueError(error) {
  state.items = [];
  state.total = 0;
  $("#queue").replaceChildren();
  $("#counts").replaceChildren();
  $("#more").hidden = true;
  const summary = $("#queue-summary");
  summary.textContent = `筛选条件有误 The filter was refused: ${error.message}`;
  summary.classList.add("error");
  summary.setAttribute("role", "alert");
  $("#detail").replaceChildren(el("p", { className: "empty error", textContent: `请修改筛选条件。 Correct the filter: ${error.message}` }));
}

async function start() {
  const taxonomy = await api("/taxonomy");
  for (const type of taxonomy.types) { state.taxonomy[type.type] = type; state.order.push(type.type); }
  state.dueHours = taxonomy.due_hours_by_severity || {};
  fillFilterForm();
  const me = await api("/me").catch(() => null);  // decisions are recorded as this key and its holder
  $("#signed-in").textContent = me ? who(me) : "—";
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams(new FormData(event.target));
    for (const key of [...params.keys()]) if (!params.get(key)) params.delete(key);
    history.replaceState(null, "", `?${params}`);
    loadQueue().catch(showQueueError);
  });
  $("#more").addEventListener("click", () => loadQueue({ append: true }));
  document.addEventListener("keydown", onKey);
  await loadQueue().catch(showQueueError);
  document.body.dataset.readyMs = String(Math.round(performance.now()));  // benchmarks/review_queue.py reads it
  document.body.dataset.ready = "true";
}

start();
