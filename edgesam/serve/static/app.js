// The click-to-segment page: talks to the /v1 API of the server that served it. No dependencies.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const PALETTE = [[30, 144, 255], [255, 99, 71], [60, 179, 113], [238, 130, 238], [255, 165, 0], [0, 206, 209],
    [218, 165, 32], [147, 112, 219], [240, 128, 128], [46, 139, 87], [210, 105, 30], [100, 149, 237]];
  const MASK_COLOR = [30, 144, 255];
  const state = {
    imageId: null, fileName: null, width: 0, height: 0,
    prompts: [],          // {type: "point", x, y, label} | {type: "box", box: [x0, y0, x1, y1]}
    candidates: [],       // [{rle, score, area}]
    chosen: -1,
    kept: [],             // annotations: {rle, area, bbox, score}
    everything: [],       // records of the last "segment everything"
    timings: {},          // encode_ms, decode_ms, server_ms, click_to_mask_ms, everything_ms
    lastRequest: null,    // body of the last masks request
    renders: 0,           // overlay redraws (tests wait on it)
    seq: 0,
  };
  window.edgesam = state;

  const stage = $("stage"), imageCanvas = $("image"), overlay = $("overlay"), marks = $("marks");

  function setStatus(text, kind) { const s = $("status"); s.textContent = text; s.dataset.state = kind || "idle"; }
  function showLatency() {
    const t = state.timings, lines = [];
    if (t.encode_ms !== undefined) lines.push(`encode ${t.encode_ms.toFixed(1)} ms${t.cached ? " (cached)" : ""}`);
    if (t.decode_ms !== undefined) lines.push(`decode ${t.decode_ms.toFixed(1)} ms (server ${t.server_ms.toFixed(1)} ms)`);
    if (t.click_to_mask_ms !== undefined) lines.push(`click to mask ${t.click_to_mask_ms.toFixed(1)} ms`);
    if (t.everything_ms !== undefined) lines.push(`everything ${t.everything_ms.toFixed(0)} ms`);
    $("latency").textContent = lines.join("\n");
  }

  async function api(path, options) {
    const headers = Object.assign({}, options.headers || {});
    const key = sessionStorage.getItem("edgesam-api-key");
    if (key) headers.Authorization = "Bearer " + key;
    let response = await fetch(path, Object.assign({}, options, { headers }));
    if (response.status === 401) {
      const entered = window.prompt("This server needs an API key:");
      if (entered) { sessionStorage.setItem("edgesam-api-key", entered); return api(path, options); }
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(`${response.status}: ${body.detail || response.statusText}`);
    return body;
  }

  // ------------------------------------------------------------------ image
  async function openFile(file) {
    if (!file) return;
    setStatus("encoding " + file.name + " ...", "busy");
    try {
      const bitmap = await createImageBitmap(file);
      const started = performance.now();
      const doc = await api("/v1/images", { method: "POST", body: file,
        headers: { "Content-Type": file.type || "application/octet-stream" } });
      Object.assign(state, { imageId: doc.image_id, fileName: file.name, width: doc.width, height: doc.height,
        prompts: [], candidates: [], chosen: -1, kept: [], everything: [] });
      state.timings = { encode_ms: doc.encode_ms, cached: doc.cached, upload_ms: performance.now() - started };
      for (const c of [imageCanvas, overlay, marks]) { c.width = doc.width; c.height = doc.height; }
      imageCanvas.getContext("2d").drawImage(bitmap, 0, 0, doc.width, doc.height);
      // a tall image fits the window: the stage is no wider than the height left below the header allows
      const room = Math.max(200, window.innerHeight - stage.getBoundingClientRect().top - 16);
      stage.style.maxWidth = `${Math.floor(room * doc.width / doc.height)}px`;
      stage.classList.remove("empty");
      redraw(); showLatency(); updateButtons();
      setStatus(`${file.name}: ${doc.width}x${doc.height}`, "ready");
    } catch (err) { setStatus(String(err.message || err), "error"); }
  }
  $("file").addEventListener("change", (e) => openFile(e.target.files[0]));
  stage.addEventListener("dragover", (e) => { e.preventDefault(); stage.classList.add("drop"); });
  stage.addEventListener("dragleave", () => stage.classList.remove("drop"));
  stage.addEventListener("drop", (e) => {
    e.preventDefault(); stage.classList.remove("drop"); openFile(e.dataTransfer.files[0]);
  });

  // ------------------------------------------------------------------ prompts
  function imagePoint(event) {
    const r = marks.getBoundingClientRect();
    return [(event.clientX - r.left) * (marks.width / r.width), (event.clientY - r.top) * (marks.height / r.height)];
  }
  let drag = null;
  marks.addEventListener("contextmenu", (e) => e.preventDefault());
  marks.addEventListener("mousedown", (e) => {
    if (!state.imageId) return;
    e.preventDefault();
    drag = { start: imagePoint(e), sx: e.clientX, sy: e.clientY, button: e.button, shift: e.shiftKey, moved: false };
  });
  marks.addEventListener("mousemove", (e) => {
    if (!drag || drag.button !== 0) return;
    if (Math.hypot(e.clientX - drag.sx, e.clientY - drag.sy) > 5) drag.moved = true;
    if (drag.moved) { drag.end = imagePoint(e); drawMarks(); }
  });
  window.addEventListener("mouseup", (e) => {
    if (!drag) return;
    const d = drag; drag = null;
    const t0 = performance.now();
    if (d.moved && d.button === 0) {
      const [x, y] = imagePoint(e), [sx, sy] = d.start;
      state.prompts = state.prompts.filter((p) => p.type !== "box");   // one box per prompt
      state.prompts.push({ type: "box", box: [Math.min(sx, x), Math.min(sy, y), Math.max(sx, x), Math.max(sy, y)] });
    } else if (e.target === marks) {
      const [x, y] = d.start;
      const label = d.button === 2 || d.shift ? 0 : 1;
      state.prompts.push({ type: "point", x, y, label });
    } else { drawMarks(); return; }
    state.everything = [];
    decode(t0);
  });

  function requestBody() {
    const points = state.prompts.filter((p) => p.type === "point");
    const box = state.prompts.find((p) => p.type === "box");
    const body = { multimask: $("multimask").checked, format: "rle" };
    if (points.length) { body.points = points.map((p) => [p.x, p.y]); body.labels = points.map((p) => p.label); }
    if (box) body.box = box.box;
    return body;
  }

  async function decode(t0) {
    updateButtons(); drawMarks();
    if (!state.prompts.length) { state.candidates = []; state.chosen = -1; redraw(); showCandidates(); return; }
    const seq = ++state.seq, body = requestBody();
    state.lastRequest = body;
    setStatus("decoding ...", "busy");
    try {
      const doc = await api(`/v1/images/${state.imageId}/masks`, { method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json" } });
      if (seq !== state.seq) return;          // a newer click superseded this answer
      state.candidates = doc.masks[0].map((r, i) => ({ rle: r, score: doc.scores[0][i], area: doc.areas[0][i] }));
      state.chosen = state.candidates.reduce((best, c, i, all) => (c.score > all[best].score ? i : best), 0);
      redraw();
      state.timings.decode_ms = doc.decode_ms; state.timings.server_ms = doc.server_ms;
      state.timings.click_to_mask_ms = performance.now() - t0;
      showLatency(); showCandidates(); updateButtons();
      setStatus(`${state.prompts.length} prompt(s)`, "ready");
    } catch (err) { if (seq === state.seq) setStatus(String(err.message || err), "error"); }
  }

  // ------------------------------------------------------------------ drawing
  function redraw() {
    const ctx = overlay.getContext("2d");
    const data = ctx.createImageData(overlay.width || 1, overlay.height || 1);
    if (state.everything.length) {
      const masks = state.everything.slice().sort((a, b) => b.area - a.area).map((r) => rle.toMask(r.segmentation));
      rle.paint(data, masks, PALETTE, 130);
    } else if (state.chosen >= 0 && state.candidates[state.chosen]) {
      rle.paint(data, [rle.toMask(state.candidates[state.chosen].rle)], [MASK_COLOR], 140);
    }
    ctx.putImageData(data, 0, 0);
    state.renders += 1;
    drawMarks();
  }
  function drawMarks() {
    const ctx = marks.getContext("2d");
    ctx.clearRect(0, 0, marks.width, marks.height);
    const scale = Math.max(1, marks.width / Math.max(1, marks.getBoundingClientRect().width));
    ctx.lineWidth = 2 * scale;
    const boxes = state.prompts.filter((p) => p.type === "box").map((p) => p.box);
    if (drag && drag.moved && drag.end) {
      const [sx, sy] = drag.start, [x, y] = drag.end;
      boxes.push([Math.min(sx, x), Math.min(sy, y), Math.max(sx, x), Math.max(sy, y)]);
    }
    ctx.strokeStyle = "#ffd400";
    for (const [x0, y0, x1, y1] of boxes) ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    for (const p of state.prompts.filter((q) => q.type === "point")) {
      ctx.beginPath(); ctx.arc(p.x, p.y, 5 * scale, 0, 2 * Math.PI);
      ctx.fillStyle = p.label ? "#22c55e" : "#ef4444"; ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.stroke();
    }
  }
  function showCandidates() {
    const box = $("candidates"); box.textContent = "";
    state.candidates.forEach((c, i) => {
      const b = document.createElement("button");
      b.textContent = `mask ${i + 1}: score ${c.score.toFixed(3)} (${c.area} px)`;
      b.className = i === state.chosen ? "active" : "";
      b.addEventListener("click", () => { state.chosen = i; state.everything = []; redraw(); showCandidates(); });
      box.appendChild(b);
    });
  }
  function showAnnotations() {
    $("annotations").textContent = state.kept.length ? `${state.kept.length} kept` : "none kept";
  }
  function updateButtons() {
    const has = !!state.imageId;
    $("undo").disabled = !state.prompts.length; $("clear").disabled = !state.prompts.length && !state.everything.length;
    $("keep").disabled = state.chosen < 0; $("everything").disabled = !has;
    $("download-png").disabled = state.chosen < 0 && !state.kept.length;
    $("download-coco").disabled = !state.kept.length && state.chosen < 0 && !state.everything.length;
  }

  // ------------------------------------------------------------------ actions
  function undo() { if (state.prompts.length) { state.prompts.pop(); decode(performance.now()); } }
  function clear() {
    state.prompts = []; state.candidates = []; state.chosen = -1; state.everything = []; state.seq++;
    redraw(); showCandidates(); updateButtons();
  }
  function keep() {
    const c = state.candidates[state.chosen]; if (!c) return;
    const mask = rle.toMask(c.rle);
    state.kept.push(Object.assign({ rle: c.rle, score: c.score }, rle.bbox(mask, state.height, state.width)));
    clear(); showAnnotations();
  }
  function optionalNumber(id) {  // empty: null, the server picks the model's default
    const v = parseFloat($(id).value);
    return Number.isFinite(v) ? Math.max(0, Math.min(1, v)) : null;
  }
  async function everything() {
    const pps = Math.max(1, Math.min(64, parseInt($("pps").value, 10) || 16));
    setStatus("segmenting everything ...", "busy");
    const t0 = performance.now();
    try {
      const doc = await api(`/v1/images/${state.imageId}/everything`, { method: "POST",
        body: JSON.stringify({ points_per_side: pps, pred_iou_thresh: optionalNumber("iou"),
          stability_score_thresh: optionalNumber("stability") }), headers: { "Content-Type": "application/json" } });
      state.prompts = []; state.candidates = []; state.chosen = -1; state.seq++;
      state.everything = doc.masks;
      state.timings.everything_ms = performance.now() - t0;
      redraw(); showCandidates(); showLatency(); updateButtons();
      const t = doc.thresholds;
      setStatus(`everything: ${doc.count} masks (iou ≥ ${t.pred_iou_thresh}, stability ≥ ${t.stability_score_thresh})` +
        (doc.count ? "" : `: ${doc.no_masks_because}; try lower thresholds`), "ready");
    } catch (err) { setStatus(String(err.message || err), "error"); }
  }
  function save(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name; a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  }
  function downloadPng() {
    const c = state.candidates[state.chosen];
    const masks = c ? [rle.toMask(c.rle)] : state.kept.map((k) => rle.toMask(k.rle));
    const canvas = document.createElement("canvas"); canvas.width = state.width; canvas.height = state.height;
    const ctx = canvas.getContext("2d"), data = ctx.createImageData(state.width, state.height);
    for (let p = 0; p < data.data.length; p += 4) data.data[p + 3] = 255;
    rle.paint(data, masks, [[255, 255, 255]], 255);
    ctx.putImageData(data, 0, 0);
    canvas.toBlob((blob) => save(blob, stem() + "_mask.png"), "image/png");
  }
  function stem() { return (state.fileName || "image").replace(/\.[^.]*$/, ""); }
  function cocoDocument() {
    const anns = state.kept.slice();
    const c = state.candidates[state.chosen];
    if (c) anns.push(Object.assign({ rle: c.rle, score: c.score }, rle.bbox(rle.toMask(c.rle), state.height, state.width)));
    if (!anns.length) for (const r of state.everything) anns.push({ rle: r.segmentation, score: r.predicted_iou, area: r.area, bbox: r.bbox });
    return {
      info: { description: "edgesam serve annotations", date_created: new Date().toISOString() },
      images: [{ id: 1, file_name: state.fileName, width: state.width, height: state.height }],
      categories: [{ id: 1, name: "object" }],
      annotations: anns.map((a, i) => ({ id: i + 1, image_id: 1, category_id: 1, segmentation: a.rle,
        area: a.area, bbox: a.bbox, iscrowd: 0, score: a.score })),
    };
  }
  function downloadCoco() {
    save(new Blob([JSON.stringify(cocoDocument())], { type: "application/json" }), stem() + "_coco.json");
  }
  state.cocoDocument = cocoDocument;
  $("undo").addEventListener("click", undo);
  $("clear").addEventListener("click", clear);
  $("keep").addEventListener("click", keep);
  $("everything").addEventListener("click", everything);
  $("download-png").addEventListener("click", downloadPng);
  $("download-coco").addEventListener("click", downloadCoco);
  $("multimask").addEventListener("change", () => decode(performance.now()));
  window.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "z") { e.preventDefault(); undo(); }
    else if (e.key === "Escape") clear();
    else if (e.key === "Enter") keep();
  });
  fetch("/healthz").then((r) => r.json()).then((h) => { $("model").textContent = `${h.model} on ${h.backend}`; })
    .catch(() => {});
})();
