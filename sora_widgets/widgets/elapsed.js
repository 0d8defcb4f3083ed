// Elapsed time and an indeterminate progress bar for a job card, ticking in the browser
// between the kernel's updates so the kernel sends nothing while a job waits.
const LABELS = { pending: "Waiting", submitting: "Sending", queued: "Queued", running: "Running",
                 completed: "Done", failed: "Failed", cancelled: "Cancelled",
                 unknown: "Unknown: may have reached fal" };

function format(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

export default {
  render({ model, el }) {
    el.classList.add("sora-elapsed");
    const text = document.createElement("span");
    const bar = document.createElement("div");
    bar.className = "sora-elapsed-bar";
    bar.appendChild(document.createElement("div"));
    el.append(text, bar);
    let base = model.get("elapsed_s");
    let since = performance.now();
    const live = () => ["pending", "submitting", "queued", "running"].includes(model.get("status"));
    const draw = () => {
      const status = model.get("status");
      const seconds = live() ? base + (performance.now() - since) / 1000 : model.get("elapsed_s");
      const position = model.get("position");
      let label = LABELS[status] || status;
      if (status === "queued" && position !== null) label += ` (position ${position})`;
      text.textContent = `${label} · ${format(seconds)}`;
      el.dataset.status = status;
    };
    const sync = () => { base = model.get("elapsed_s"); since = performance.now(); draw(); };
    model.on("change:elapsed_s", sync);
    model.on("change:status", sync);
    model.on("change:position", draw);
    const timer = setInterval(() => { if (live()) draw(); }, 500);
    draw();
    return () => clearInterval(timer);
  },
};
