// A page of past runs as poster thumbnails. Clicking a tile sets the model's `value` to that
// run's history id; the kernel then opens the run's card. Text is set as text, never as HTML.
function tile(item, chosen, choose) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "sora-tile" + (item.id === chosen ? " sora-tile-chosen" : "");
  button.dataset.id = String(item.id);
  button.dataset.status = item.status;
  button.title = item.label;
  const frame = document.createElement("div");
  frame.className = "sora-tile-frame";
  if (item.poster) {
    const img = document.createElement("img");
    img.src = item.poster;
    img.alt = `poster of run #${item.id}`;
    img.loading = "lazy";
    frame.append(img);
  } else {
    frame.textContent = item.status;
  }
  const head = document.createElement("div");
  head.className = "sora-tile-head";
  head.textContent = item.head;
  const caption = document.createElement("div");
  caption.className = "sora-tile-caption";
  caption.textContent = item.caption;
  button.append(frame, head, caption);
  button.addEventListener("click", () => choose(item.id));
  return button;
}

export default {
  render({ model, el }) {
    el.classList.add("sora-gallery");
    const choose = (id) => { model.set("value", id); model.save_changes(); };
    const draw = () => {
      const items = model.get("items");
      const chosen = model.get("value");
      if (!items.length) {
        const empty = document.createElement("div");
        empty.className = "sora-gallery-empty";
        empty.textContent = "No runs match.";
        el.replaceChildren(empty);
        return;
      }
      el.replaceChildren(...items.map((item) => tile(item, chosen, choose)));
    };
    model.on("change:items", draw);
    model.on("change:value", draw);
    draw();
    return () => {
      model.off("change:items", draw);
      model.off("change:value", draw);
    };
  },
};
