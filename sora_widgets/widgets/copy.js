// A button that puts a snippet of code on the clipboard.
export default {
  render({ model, el }) {
    const button = document.createElement("button");
    button.className = "jupyter-button sora-copy";
    const reset = () => { button.textContent = model.get("label"); };
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(model.get("text"));
        button.textContent = "Copied";
      } catch (err) {
        button.textContent = "Copy failed: select the code and copy it";
      }
      setTimeout(reset, 1500);
    });
    model.on("change:label", reset);
    reset();
    el.appendChild(button);
  },
};
