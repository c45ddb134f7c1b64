// The page of `irstd serve`: frames are posted one by one to /v1/detect with overlay=true; the slider
// re-runs every frame at the new threshold. No dependencies, works offline.
"use strict";

const state = { frames: [], results: new Map(), threshold: 0.5, generation: 0, model: null };
const $ = (id) => document.getElementById(id);

function headers() {
  const key = $("apikey").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json();
    if (!r.ok) { $("model").textContent = body.error || r.statusText; return; }
    const m = body.models[0];
    state.model = m;
    $("model").textContent = `${m.tag} · ${m.precision} · ${m.device}`;
    if (state.threshold === 0.5 && typeof m.default_threshold === "number") setThreshold(m.default_threshold);
  } catch (e) { $("model").textContent = `server unreachable (${e})`; }
}

function setThreshold(v) {
  state.threshold = v;
  $("threshold").value = v;
  $("threshold-value").textContent = Number(v).toFixed(2);
}

function card(index) {
  let el = document.getElementById(`frame-${index}`);
  if (!el) {
    el = document.createElement("article");
    el.className = "frame";
    el.id = `frame-${index}`;
    $("frames").appendChild(el);
  }
  return el;
}

function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }

function render(index) {
  const file = state.frames[index];
  const res = state.results.get(index);
  const el = card(index);
  el.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = file.name;
  el.appendChild(h);
  if (!res) { el.appendChild(Object.assign(document.createElement("p"), { textContent: "running…" })); return; }
  if (res.error) { el.appendChild(Object.assign(document.createElement("p"), { className: "error", textContent: res.error })); return; }
  const rec = res.record;
  const img = document.createElement("img");
  img.className = "overlay";
  img.alt = `${file.name} with ${rec.targets.length} target(s) boxed`;
  img.src = rec.overlay;
  el.appendChild(img);
  const meta = document.createElement("div");
  meta.className = "meta";
  meta.textContent = `${rec.width}×${rec.height} · ${rec.targets.length} target(s) · ${res.timing.total_ms.toFixed(0)} ms`;
  el.appendChild(meta);
  if (rec.targets.length) {
    const table = document.createElement("table");
    table.className = "targets";
    const head = document.createElement("tr");
    for (const t of ["#", "x", "y", "area", "bbox (x0, y0, x1, y1)", "peak"]) {
      const th = document.createElement("th"); th.textContent = t; head.appendChild(th);
    }
    table.appendChild(head);
    rec.targets.forEach((t, i) => {
      const tr = document.createElement("tr");
      [i, t.x.toFixed(1), t.y.toFixed(1), t.area, t.bbox.join(", "), t.peak.toFixed(3)].forEach((v) => tr.appendChild(cell(v)));
      table.appendChild(tr);
    });
    el.appendChild(table);
  }
}

async function detect(index, generation) {
  const file = state.frames[index];
  const form = new FormData();
  form.append("file", file, file.name);
  const url = `/v1/detect?overlay=true&threshold=${state.threshold}`;
  let res;
  try {
    const r = await fetch(url, { method: "POST", body: form, headers: headers() });
    const body = await r.json();
    res = r.ok ? { record: body.frames[0], timing: body.timing } : { error: `${r.status}: ${body.error || r.statusText}` };
  } catch (e) { res = { error: String(e) }; }
  if (generation !== state.generation) return;  // a newer threshold superseded this answer
  state.results.set(index, res);
  render(index);
}

async function runAll() {
  const generation = ++state.generation;
  const n = state.frames.length;
  $("status").textContent = n ? `running ${n} frame(s) at threshold ${state.threshold.toFixed(2)}…` : "";
  // a few at a time: the server batches concurrent frames
  const queue = [...Array(n).keys()];
  const worker = async () => { while (queue.length) await detect(queue.shift(), generation); };
  await Promise.all(Array.from({ length: Math.min(4, n) }, worker));
  if (generation !== state.generation) return;
  const found = [...state.results.values()].reduce((s, r) => s + (r.record ? r.record.targets.length : 0), 0);
  $("status").textContent = n ? `${n} frame(s), ${found} target(s)` : "";
  $("download").disabled = $("clear").disabled = n === 0;
}

function addFiles(files) {
  for (const f of files) {
    const index = state.frames.push(f) - 1;
    render(index);
  }
  runAll();
}

function download() {
  const records = state.frames.map((f, i) => {
    const r = state.results.get(i);
    if (!r || r.error) return { file: f.name, error: r ? r.error : "not run" };
    const { overlay, ...rest } = r.record;  // the pictures stay on the page
    return rest;
  });
  const doc = { schema: "irstd-detections/1", checkpoint: state.model ? state.model.tag : null,
                threshold: state.threshold, frames: records };
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: "application/json" }));
  a.download = "detections.json";
  a.click();
  URL.revokeObjectURL(a.href);
}

let debounce = null;
$("threshold").addEventListener("input", (e) => {
  setThreshold(Number(e.target.value));
  clearTimeout(debounce);
  debounce = setTimeout(runAll, 200);
});
$("picker").addEventListener("change", (e) => { addFiles(e.target.files); e.target.value = ""; });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); addFiles(e.dataTransfer.files); });
$("download").addEventListener("click", download);
$("clear").addEventListener("click", () => {
  state.frames = []; state.results.clear(); state.generation++;
  $("frames").replaceChildren(); $("status").textContent = "";
  $("download").disabled = $("clear").disabled = true;
});
$("apikey").addEventListener("change", () => { loadModel(); if (state.frames.length) runAll(); });
loadModel();
