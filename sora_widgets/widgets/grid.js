// CompareGrid front end: a table of videos played in lockstep, a full-size view, star ratings.
// Every piece of text from Python is set with textContent, never parsed as HTML.
// A `local` cell's video is asked of the kernel ({type: "video", history_id, request}) and arrives
// in chunks ({index, count, mime} and one buffer each; Jupyter servers refuse a message over
// 10 MB), joined into a Blob URL: a path would resolve against the page, not the kernel's folder
// (JupyterLab's /lab/tree/..., VS Code serves no files). Remote URLs play as given. A cell's
// poster is a small data:image URI of its first frame, shown until the video can play.

const FINAL = new Set(["completed", "failed", "cancelled", "unknown"]);
const DRIFT_S = 0.15; // videos further than this from the leader are pulled back into step

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function safeSrc(src) {
  return src && /^\s*(https?:|data:video\/)/i.test(src) ? src.trim() : null;
}

function safePoster(src) {
  return src && /^data:image\/(jpeg|png|webp);base64,/i.test(src) ? src : null;
}

function fmt(t) {
  if (!isFinite(t)) return "0.0";
  return t.toFixed(1);
}

function stars(cell, onRate) {
  const box = h("span", "sora-grid-stars");
  for (let i = 1; i <= 5; i++) {
    const star = h("button", "sora-grid-star" + (cell.rating && i <= cell.rating ? " on" : ""), "★");
    star.type = "button";
    star.title = `Rate ${i} of 5` + (cell.rating === i ? " (click again to clear)" : "");
    star.addEventListener("click", (e) => {
      e.stopPropagation();
      onRate(cell, cell.rating === i ? null : i);
    });
    box.appendChild(star);
  }
  return box;
}

function render({ model, el }) {
  el.classList.add("sora-grid");
  const videos = new Map(); // videoKey(cell) -> <video>, kept across re-renders
  const blobs = new Map(); // videoKey of a local cell -> Blob URL of the bytes the kernel sent
  const pending = new Map(); // request id -> {key, parts, got}: chunks of a video on their way
  let playing = false;
  let seeking = false;

  const bar = h("div", "sora-grid-bar");
  const play = h("button", "sora-grid-play", "▶ Play all");
  play.type = "button";
  const slider = h("input", "sora-grid-seek");
  slider.type = "range";
  slider.min = "0";
  slider.step = "0.01";
  slider.value = "0";
  const clock = h("span", "sora-grid-clock", "0.0 s");
  const loopBox = h("label", "sora-grid-loop");
  const loop = h("input");
  loop.type = "checkbox";
  loop.checked = true;
  loopBox.append(loop, document.createTextNode(" loop"));
  const notice = h("span", "sora-grid-notice");
  bar.append(play, slider, clock, loopBox, notice);
  const table = h("table", "sora-grid-table");
  const overlay = h("div", "sora-grid-overlay");
  overlay.hidden = true;
  el.append(bar, table, overlay);

  const all = () => [...table.querySelectorAll("video")];
  const leader = () => all().reduce((a, v) => (!a || (v.duration || 0) > (a.duration || 0) ? v : a), null);

  function seekAll(t) {
    for (const v of all()) {
      const end = isFinite(v.duration) ? v.duration : t;
      v.currentTime = Math.min(t, Math.max(0, end - 0.05));
    }
  }

  function setPlaying(on) {
    playing = on;
    play.textContent = on ? "❚❚ Pause all" : "▶ Play all";
    const lead = leader();
    const t = lead ? lead.currentTime : 0;
    for (const v of all()) {
      if (on) {
        if (Math.abs(v.currentTime - t) > DRIFT_S) v.currentTime = Math.min(t, v.duration || t);
        if (!(isFinite(v.duration) && t >= v.duration)) v.play().catch(() => {});
      } else {
        v.pause();
      }
    }
  }

  function onLeaderTime(v) {
    if (v !== leader()) return;
    const t = v.currentTime;
    if (!seeking) slider.value = String(t);
    clock.textContent = `${fmt(t)} s`;
    if (!playing) return;
    for (const other of all()) {
      if (other === v || !isFinite(other.duration) || t >= other.duration) continue;
      if (Math.abs(other.currentTime - t) > DRIFT_S) other.currentTime = t;
      if (other.paused) other.play().catch(() => {});
    }
  }

  function onEnded(v) {
    if (v !== leader() || !playing) return;
    if (loop.checked) {
      seekAll(0);
      setPlaying(true);
    } else {
      setPlaying(false);
    }
  }

  function videoKey(cell) {
    if (cell.status !== "completed") return null;
    if (cell.local) return `${cell.history_id}|local`;
    const src = safeSrc(cell.src);
    return src ? `${cell.history_id}|${src}` : null;
  }

  function ask(cell, key) {
    const request = `${key}|${Math.random().toString(36).slice(2)}`;
    pending.set(request, { key, parts: [], got: 0 });
    model.send({ type: "video", history_id: cell.history_id, request });
  }

  function onMessage(msg, buffers) {
    if (!msg || msg.type !== "video" || !buffers || !buffers.length) return;
    const wait = pending.get(msg.request);
    if (!wait) return; // another view's answer, or one already complete
    if (wait.parts[msg.index] === undefined) wait.got += 1;
    wait.parts[msg.index] = buffers[0];
    if (wait.got < msg.count) return;
    pending.delete(msg.request);
    const v = videos.get(wait.key);
    if (!v || blobs.has(wait.key)) return; // no longer shown, or already playing
    const url = URL.createObjectURL(new Blob(wait.parts, { type: msg.mime || "video/mp4" }));
    blobs.set(wait.key, url);
    v.src = url;
  }

  function forget(key) {
    videos.get(key).pause();
    videos.delete(key);
    for (const [request, wait] of pending) if (wait.key === key) pending.delete(request);
    if (blobs.has(key)) URL.revokeObjectURL(blobs.get(key));
    blobs.delete(key);
  }

  function videoFor(cell, key) {
    let v = videos.get(key);
    if (!v) {
      v = h("video", "sora-grid-video");
      v.muted = true;
      v.playsInline = true;
      v.preload = "auto";
      const poster = safePoster(cell.poster);
      if (poster) v.poster = poster;
      if (cell.local) {
        ask(cell, key);
      } else {
        v.src = safeSrc(cell.src);
      }
      v.addEventListener("loadedmetadata", () => {
        const lead = leader();
        slider.max = String(lead && isFinite(lead.duration) ? lead.duration : 0);
      });
      v.addEventListener("timeupdate", () => onLeaderTime(v));
      v.addEventListener("ended", () => onEnded(v));
      videos.set(key, v);
    }
    return v;
  }

  function rate(cell, rating) {
    model.send({ type: "rate", history_id: cell.history_id, rating });
  }

  function open(cell, src) {
    overlay.replaceChildren();
    const frame = h("div", "sora-grid-full");
    const close = h("button", "sora-grid-close", "✕");
    close.type = "button";
    close.title = "Close";
    close.addEventListener("click", () => {
      overlay.hidden = true;
      overlay.replaceChildren();
    });
    const big = h("video", "sora-grid-big");
    big.controls = true;
    big.muted = true;
    big.playsInline = true;
    big.loop = true;
    const poster = safePoster(cell.poster);
    if (poster) big.poster = poster;
    big.src = src;
    const lead = leader();
    if (lead) big.currentTime = lead.currentTime;
    big.play().catch(() => {});
    const where = [model.get("rows")[cell.row], model.get("cols")[cell.col], cell.label];
    const rating = stars(cell, rate);
    rating.dataset.historyId = String(cell.history_id);
    frame.append(close, big, h("div", "sora-grid-label", where.filter(Boolean).join(" · ")), rating);
    overlay.append(frame);
    overlay.hidden = false;
  }

  function item(cell) {
    const box = h("div", `sora-grid-item status-${cell.status}`);
    const key = videoKey(cell);
    if (key) {
      const v = videoFor(cell, key);
      v.title = "Click to open full size";
      v.onclick = () => v.src && open(cell, v.src);
      box.append(v);
    } else {
      const what = cell.status === "completed" ? "video unavailable" : cell.status;
      const badge = h("div", "sora-grid-status", what);
      if (!FINAL.has(cell.status)) badge.classList.add("busy");
      box.append(badge);
    }
    const foot = h("div", "sora-grid-foot");
    if (cell.label) {
      const label = h("span", "sora-grid-label", cell.label);
      label.title = cell.label; // the label shows two lines at most
      foot.append(label);
    }
    if (cell.history_id !== null && cell.history_id !== undefined && cell.status === "completed") {
      foot.append(stars(cell, rate));
    }
    box.append(foot);
    if (cell.error) box.append(h("div", "sora-grid-error", cell.error));
    return box;
  }

  function draw() {
    const rows = model.get("rows");
    const cols = model.get("cols");
    const cells = model.get("cells");
    const head = h("tr");
    const corner = h("th", "sora-grid-corner");
    const ra = model.get("row_axis"), ca = model.get("col_axis");
    corner.textContent = [ra, ca].filter(Boolean).join(" \\ ");
    head.append(corner);
    for (const c of cols) {
      const th = h("th", "sora-grid-colhead", c);
      th.title = c;
      head.append(th);
    }
    const body = [head];
    rows.forEach((r, ri) => {
      const tr = h("tr");
      tr.append(h("th", "sora-grid-rowhead", r));
      cols.forEach((_c, ci) => {
        const td = h("td", "sora-grid-cell");
        for (const cell of cells) if (cell.row === ri && cell.col === ci) td.append(item(cell));
        tr.append(td);
      });
      body.push(tr);
    });
    table.replaceChildren(...body);
    const shownKeys = new Set(cells.map(videoKey));
    for (const key of [...videos.keys()]) if (!shownKeys.has(key)) forget(key);
    notice.textContent = model.get("notice");
    const openStars = overlay.querySelector(".sora-grid-stars");
    const shown = openStars && cells.find((c) => String(c.history_id) === openStars.dataset.historyId);
    if (shown) {
      const fresh = stars(shown, rate);
      fresh.dataset.historyId = openStars.dataset.historyId;
      openStars.replaceWith(fresh);
    }
    if (playing) setPlaying(true);
  }

  play.addEventListener("click", () => setPlaying(!playing));
  slider.addEventListener("input", () => {
    seeking = true;
    seekAll(Number(slider.value));
    clock.textContent = `${fmt(Number(slider.value))} s`;
  });
  slider.addEventListener("change", () => {
    seeking = false;
  });

  model.on("msg:custom", onMessage);
  draw();
  for (const name of ["cells", "rows", "cols", "notice"]) model.on(`change:${name}`, draw);
  return () => {
    for (const name of ["cells", "rows", "cols", "notice"]) model.off(`change:${name}`, draw);
    model.off("msg:custom", onMessage);
    for (const key of [...videos.keys()]) forget(key);
  };
}

export default { render };
