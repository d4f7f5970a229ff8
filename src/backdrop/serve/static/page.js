"use strict";
// The page of `backdrop serve`: drop photos, look at each cut-out on four backdrops, paint
// keep/remove strokes that the server turns into a new matte (POST /v1/refine), undo,
// download. Plain JavaScript: no build step, nothing loaded from elsewhere.

const results = document.getElementById("results");
const picker = document.getElementById("files");
const template = document.getElementById("card-template");
const KEEP = "#00ff00", REMOVE = "#ff0000";   // what /v1/refine reads as keep and remove
const MAX_UNDO = 20;

async function post(url, form) {
  const response = await fetch(url, { method: "POST", body: form });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error; } catch (e) { /* not JSON */ }
    if (response.status === 503) message += " (the server is busy: try again shortly)";
    throw new Error(message);
  }
  return { blob: await response.blob(), warnings: response.headers.get("X-Backdrop-Warnings") };
}

function stemOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

class Card {
  constructor(file) {
    this.file = file;
    this.history = [];     // {blob, url, hints: ImageData | null, make(format) -> Promise}
    this.mode = null;
    this.busy = false;
    this.root = template.content.firstElementChild.cloneNode(true);
    this.$ = (selector) => this.root.querySelector(selector);
    this.$(".name").textContent = file.name;
    this.stage = this.$(".stage");
    this.image = this.$(".result");
    this.canvas = this.$(".strokes");
    this.wire();
    results.appendChild(this.root);
    this.start();
  }

  wire() {
    this.root.querySelectorAll("[data-bg]").forEach((button) => button.addEventListener("click", () => {
      this.root.querySelectorAll("[data-bg]").forEach((b) => b.classList.toggle("on", b === button));
      this.stage.classList.remove("checker", "white", "black", "colour");
      this.stage.classList.add(button.dataset.bg);
    }));
    const colour = this.$("input.colour");
    colour.addEventListener("input", () => {
      this.root.style.setProperty("--colour", colour.value);
      this.root.querySelectorAll("[data-bg]").forEach((b) => b.classList.remove("on"));
      this.stage.classList.remove("checker", "white", "black");
      this.stage.classList.add("colour");
    });
    this.root.querySelectorAll("button.mode").forEach((button) => button.addEventListener("click", () => {
      this.mode = this.mode === button.dataset.mode ? null : button.dataset.mode;
      this.root.querySelectorAll("button.mode").forEach((b) => b.classList.toggle("on", b.dataset.mode === this.mode));
      this.stage.classList.toggle("painting", this.mode !== null);
    }));
    this.$(".undo").addEventListener("click", () => this.undo());
    this.root.querySelectorAll("button.download").forEach((button) =>
      button.addEventListener("click", () => this.download(button.dataset.format)));
    this.canvas.addEventListener("pointerdown", (e) => this.strokeStart(e));
    this.canvas.addEventListener("pointermove", (e) => this.strokeMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.strokeEnd(e));
    this.canvas.addEventListener("pointercancel", (e) => this.strokeEnd(e));
  }

  setState(state, text) {
    this.root.dataset.state = state;
    this.$(".status").textContent = text;
    const idle = state !== "working" && this.history.length > 0;
    this.root.querySelectorAll("button.download").forEach((b) => { b.disabled = !idle; });
    this.$(".undo").disabled = !idle || this.history.length < 2;
  }

  settings() {
    return new URLSearchParams({ subject: document.getElementById("subject").value,
                                 quality: document.getElementById("quality").value });
  }

  async start() {
    const query = this.settings();
    const make = (format) => {
      const form = new FormData();
      form.append("image", this.file);
      query.set("format", format);
      return post(`/v1/remove?${query}`, form);
    };
    await this.attempt("removing the background…", make, null);
  }

  async attempt(what, make, hints) {
    this.busy = true;
    this.setState("working", what);
    try {
      const answer = await make("png");
      if (this.history.length === 0) {
        this.canvas.width = 1;   // sized once the first result has loaded (below)
      }
      this.push({ blob: answer.blob, url: URL.createObjectURL(answer.blob), hints, make });
      await this.image.decode();
      if (this.canvas.width !== this.image.naturalWidth || this.canvas.height !== this.image.naturalHeight) {
        this.canvas.width = this.image.naturalWidth;
        this.canvas.height = this.image.naturalHeight;
      }
      this.setState("ready", answer.warnings ? `done; note: ${answer.warnings}` : "done");
    } catch (error) {
      this.restoreStrokes();
      this.setState(this.history.length ? "ready" : "error", `error: ${error.message}`);
    } finally {
      this.busy = false;
    }
  }

  push(entry) {
    this.history.push(entry);
    while (this.history.length > MAX_UNDO + 1) URL.revokeObjectURL(this.history.shift().url);
    this.show();
  }

  show() {
    const top = this.history[this.history.length - 1];
    this.image.src = top.url;
    this.root.querySelectorAll(".thumb img").forEach((img) => { img.src = top.url; });
  }

  restoreStrokes() {
    const context = this.canvas.getContext("2d");
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    const top = this.history[this.history.length - 1];
    if (top && top.hints) context.putImageData(top.hints, 0, 0);
  }

  undo() {
    if (this.busy || this.history.length < 2) return;
    URL.revokeObjectURL(this.history.pop().url);
    this.show();
    this.restoreStrokes();
    this.setState("ready", "undone");
  }

  point(e) {
    const box = this.canvas.getBoundingClientRect();
    const scale = this.canvas.width / box.width;
    return { x: (e.clientX - box.left) * scale, y: (e.clientY - box.top) * scale, scale };
  }

  strokeStart(e) {
    if (!this.mode || this.busy || this.history.length === 0) return;
    this.canvas.setPointerCapture(e.pointerId);
    const p = this.point(e);
    const context = this.canvas.getContext("2d");
    context.strokeStyle = context.fillStyle = this.mode === "keep" ? KEEP : REMOVE;
    context.lineWidth = this.$(".size").valueAsNumber * p.scale;
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    context.arc(p.x, p.y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
    this.last = p;
    e.preventDefault();
  }

  strokeMove(e) {
    if (!this.last) return;
    const p = this.point(e);
    const context = this.canvas.getContext("2d");
    context.beginPath();
    context.moveTo(this.last.x, this.last.y);
    context.lineTo(p.x, p.y);
    context.stroke();
    this.last = p;
  }

  async strokeEnd(e) {
    if (!this.last) return;
    this.last = null;
    const previous = this.history[this.history.length - 1];
    const hints = this.canvas.getContext("2d").getImageData(0, 0, this.canvas.width, this.canvas.height);
    const hintsBlob = await new Promise((done) => this.canvas.toBlob(done, "image/png"));
    const make = (format) => {
      const form = new FormData();
      form.append("image", this.file);
      form.append("matte", previous.blob, "matte.png");
      form.append("hints", hintsBlob, "hints.png");
      return post(`/v1/refine?format=${format}`, form);
    };
    await this.attempt("solving the edge again around your stroke…", make, hints);
  }

  async download(format) {
    const top = this.history[this.history.length - 1];
    let blob = top.blob;
    if (format !== "png") {
      this.setState("working", `making the ${format.toUpperCase()}…`);
      try {
        blob = (await top.make(format)).blob;
      } catch (error) {
        this.setState("ready", `error: ${error.message}`);
        return;
      }
      this.setState("ready", "done");
    }
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${stemOf(this.file.name)}.cutout.${format}`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  }
}

function addFiles(files) {
  for (const file of files) new Card(file);
}

picker.addEventListener("change", () => { addFiles(picker.files); picker.value = ""; });
document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", (e) => {
  if (e.target === document.documentElement || e.relatedTarget === null) document.body.classList.remove("dragging");
});
document.addEventListener("drop", (e) => {
  e.preventDefault();
  document.body.classList.remove("dragging");
  addFiles(e.dataTransfer.files);
});
