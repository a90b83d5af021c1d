// TailorBench blind rating page. Talks to the JSON API next to it (relative URLs), writes every
// text with textContent (never as HTML), and keeps no state a reload would lose: the server
// holds the ratings, the queue says which are done.
"use strict";

const SCALES = ["novelty", "aesthetic", "hallucination"];
// index/item: the post on screen (always together); target: where the last navigation goes
// (arrows count from it, so fast presses add up); showing: that navigation's ticket
const state = { queue: null, index: 0, target: 0, showing: 0, item: null, scores: {}, active: 0,
                busy: false };
const $ = (id) => document.getElementById(id);

function view(name) {
  document.body.dataset.view = name;
  $("login").hidden = name !== "login";
  $("rating").hidden = name !== "rating";
  $("logout").hidden = name !== "rating";
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

async function api(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.statusText);
    error.status = response.status;
    error.code = data && data.error && data.error.code;
    throw error;
  }
  return data;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function renderProgress() {
  const q = state.queue;
  const share = q.total ? (100 * q.done) / q.total : 0;
  $("progress-bar").style.width = share + "%";
  $("progress").setAttribute("aria-valuemax", q.total);
  $("progress").setAttribute("aria-valuenow", q.done);
  $("progress-text").textContent =
    `${q.done} of ${q.total} rated · post ${state.index + 1} of ${q.total}`;
  $("finished").hidden = q.done < q.total;
}

function renderScores() {
  for (const button of document.querySelectorAll("button.score")) {
    const chosen = state.scores[button.dataset.scale];
    button.setAttribute("aria-pressed", String(chosen === Number(button.dataset.value)));
  }
  document.querySelectorAll("#scores fieldset").forEach((fieldset, n) => {
    fieldset.classList.toggle("active", n === state.active);
  });
}

function renderItem(item) {
  const post = $("post");
  post.dataset.itemId = item.item_id;
  // the platform's look (its catalogue theme), set through the CSSOM: no inline style needed
  post.style.setProperty("--accent", item.theme.accent);
  post.style.setProperty("--tag", item.theme.tag);
  post.style.setProperty("--post-width", item.theme.width + "px");
  $("platform").textContent = item.platform;
  $("post-title").textContent = item.title;
  $("post-body").textContent = item.body;
  $("post-tags").textContent = item.hashtags.map((t) => "#" + t.replace(/^#/, "")).join(" ");
  const media = $("media");
  clear(media);
  for (const file of item.media) {
    const node = document.createElement(file.kind === "video" ? "video" : "img");
    if (file.kind === "video") node.controls = true; else node.alt = "";
    node.src = file.url;
    media.appendChild(node);
  }
  const history = $("history");
  clear(history);
  for (const title of item.history) history.appendChild(element("li", title));
  const sources = $("sources");
  clear(sources);
  for (const source of item.sources) {
    const li = element("li");
    li.appendChild(element("b", source.title));
    const detail = [source.text, source.tags].filter(Boolean).join(" · ");
    if (detail) li.appendChild(element("span", " — " + detail));
    sources.appendChild(li);
  }
  const rating = item.rating || {};
  state.scores = {};
  for (const scale of SCALES) if (rating[scale] !== undefined) state.scores[scale] = rating[scale];
  $("comment").value = rating.comment || "";
  state.active = 0;
  $("status").textContent = item.rating ? "You rated this post; saving again replaces it." : "";
  renderScores();
}

// Answers may come back out of order: only the latest navigation renders, so what is on
// screen, state.index and state.item always agree.
async function show(index) {
  const q = state.queue;
  if (!q.items.length) { $("status").textContent = "There is nothing to rate."; return; }
  const target = Math.max(0, Math.min(index, q.items.length - 1));
  const ticket = ++state.showing;
  state.target = target;
  const item = await api("GET", "items/" + encodeURIComponent(q.items[target].item_id));
  if (ticket !== state.showing) return;  // a later navigation superseded this one
  state.index = target;
  state.item = item;
  renderProgress();
  renderItem(item);
  document.body.dataset.itemIndex = String(target);
}

function firstUnrated(after) {
  const items = state.queue.items;
  for (let step = 1; step <= items.length; step++) {
    const n = (after + step) % items.length;
    if (!items[n].rating) return n;
  }
  return -1;
}

function choose(scale, value) {
  state.scores[scale] = value;
  const at = SCALES.indexOf(scale);
  if (at === state.active && state.active < SCALES.length - 1) state.active += 1;
  renderScores();
}

async function save() {
  if (state.busy || !state.item) return;
  const missing = SCALES.filter((s) => state.scores[s] === undefined);
  if (missing.length) {
    $("status").textContent = "Still to score: " + missing.join(", ");
    state.active = SCALES.indexOf(missing[0]);
    renderScores();
    return;
  }
  state.busy = true;
  const index = state.index;  // the post on screen now, whatever happens while saving
  try {
    const body = { ...state.scores, comment: $("comment").value };
    const saved = await api("PUT", "ratings/" + encodeURIComponent(state.item.item_id), body);
    state.queue.items[index].rating = saved.rating;
    state.queue.done = saved.done;
    const next = firstUnrated(index);
    await show(next === -1 ? Math.min(index + 1, state.queue.items.length - 1) : next);
    $("status").textContent = "Saved.";
  } catch (error) {
    handle(error);
  } finally {
    state.busy = false;
  }
}

function handle(error) {
  if (error.status === 401) { view("login"); $("login-error").textContent = error.message; return; }
  showError(error.message);
}

async function start() {
  showError("");
  try {
    state.queue = await api("GET", "queue");
  } catch (error) {
    if (error.status === 401) { view("login"); return; }
    showError(error.message);
    view("error");
    return;
  }
  $("who").textContent = "Rating as " + state.queue.rater;
  view("rating");
  const next = firstUnrated(-1);
  await show(next === -1 ? 0 : next);
}

function onKey(event) {
  if (document.body.dataset.view !== "rating") return;
  const typing = event.target === $("comment");
  if (typing) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); save(); }
    if (event.key === "Escape") $("comment").blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const scale = SCALES[state.active];
  if (/^[1-5]$/.test(event.key) && scale !== "hallucination") choose(scale, Number(event.key));
  else if (event.key === "y" || (scale === "hallucination" && event.key === "1")) choose("hallucination", 1);
  else if (event.key === "n" || (scale === "hallucination" && event.key === "0")) choose("hallucination", 0);
  else if (event.key === "Enter") save();
  else if (event.key === "ArrowRight") show(state.target + 1).catch(handle);
  else if (event.key === "ArrowLeft") show(state.target - 1).catch(handle);
  else if (event.key === "ArrowDown") { state.active = Math.min(state.active + 1, SCALES.length - 1); renderScores(); }
  else if (event.key === "ArrowUp") { state.active = Math.max(state.active - 1, 0); renderScores(); }
  else if (event.key === "c") $("comment").focus();
  else return;
  event.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-row").hidden = document.body.dataset.tokenRequired !== "true";
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    try {
      await api("POST", "session", { rater: $("rater").value, token: $("token").value });
      await start();
    } catch (error) {
      $("login-error").textContent = error.message;
    }
  });
  $("logout").addEventListener("click", async () => {
    await api("DELETE", "session").catch(() => null);
    state.queue = null;
    $("who").textContent = "";
    view("login");
  });
  for (const button of document.querySelectorAll("button.score")) {
    button.addEventListener("click", () => {
      choose(button.dataset.scale, Number(button.dataset.value));
      button.blur();
    });
  }
  document.querySelectorAll("#scores fieldset").forEach((fieldset, n) => {
    fieldset.addEventListener("click", (event) => {
      if (event.target.closest("button")) return;  // a score button moves on by itself
      state.active = n;
      renderScores();
    });
  });
  $("save").addEventListener("click", () => { $("save").blur(); save(); });
  $("next").addEventListener("click", () => show(state.target + 1).catch(handle));
  $("prev").addEventListener("click", () => show(state.target - 1).catch(handle));
  document.addEventListener("keydown", onKey);
  start();
});
