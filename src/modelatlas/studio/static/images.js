// Generated pictures side by side (the playground's image mode and the image arena): panes with a
// progress bar while each model draws, then its pictures, latency, cost and seed. The playground
// page is wired here; window.maPictures serves the image arena too. Needs panes.js first.
(function () {
  "use strict";

  var STATS = [["latency_s", "Latency"], ["cost_usd", "Cost"], ["seed", "Seed"]];

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text != null) el.textContent = text;
    return el;
  }

  // A pane for model `index` titled `title` (the arena passes "Model A"), or fill an existing one.
  function makePane(index, title) {
    var pane = element("section", "pane waiting");
    pane.setAttribute("data-index", String(index));
    pane.setAttribute("aria-labelledby", "ig-title-" + index);
    var heading = element("h2", "pane-title", title);
    heading.id = "ig-title-" + index;
    pane.appendChild(heading);
    fill(pane, title);
    return pane;
  }

  function fill(pane, label) {
    var phase = element("p", "phase", "Waiting…");
    var bar = element("progress");
    bar.setAttribute("aria-label", "Progress of " + label);
    var gallery = element("div", "gallery");
    gallery.setAttribute("data-label", label);
    var stats = element("dl", "stats");
    STATS.forEach(function (pair) {
      stats.appendChild(element("dt", null, pair[1]));
      var value = element("dd", null, "…");
      value.setAttribute("data-stat", pair[0]);
      stats.appendChild(value);
    });
    [phase, bar, gallery, stats].forEach(function (el) { pane.appendChild(el); });
  }

  function reset(pane, label) {
    Array.prototype.slice.call(pane.children, 1).forEach(function (el) { el.remove(); });
    pane.className = "pane waiting";
    fill(pane, label);
  }

  function seeds(images) {
    var list = images.map(function (image) { return image.seed; }).filter(function (s) { return s != null; });
    return list.length ? list.join(", ") : "– (the model takes none)";
  }

  // Apply one streamed event to the pane of its index inside `root`.
  function apply(root, event) {
    var pane = root.querySelector('.pane[data-index="' + event.index + '"]');
    if (!pane) return;
    var phase = pane.querySelector(".phase");
    var bar = pane.querySelector("progress");
    if (event.type === "loading") {
      phase.textContent = "Loading the model…";
    } else if (event.type === "progress") {
      pane.classList.remove("waiting");
      pane.classList.add("streaming");
      bar.max = event.total;
      bar.value = event.done;
      phase.textContent = "Step " + event.done + " of " + event.total;
    } else if (event.type === "images") {
      show(pane, event);
    } else if (event.type === "error") {
      bar.remove();
      phase.textContent = "Failed.";
      var note = element("p", "error", event.message);
      note.setAttribute("role", "alert");
      pane.insertBefore(note, pane.querySelector(".gallery"));
      pane.classList.remove("streaming", "waiting");
      pane.classList.add("finished", "failed");
    }
  }

  function show(pane, event) {
    var gallery = pane.querySelector(".gallery");
    var label = gallery.getAttribute("data-label");
    event.images.forEach(function (image, i) {
      var figure = element("figure");
      var img = element("img");
      img.src = image.url;
      img.alt = "Image " + (i + 1) + " of " + label + (image.seed != null ? " (seed " + image.seed + ")" : "");
      figure.appendChild(img);
      var caption = (image.width ? image.width + "×" + image.height : "");
      if (image.seed != null) caption += (caption ? " · " : "") + "seed " + image.seed;
      figure.appendChild(element("figcaption", null, caption));
      if (image.revised_prompt) figure.appendChild(element("figcaption", null, "Drawn as: " + image.revised_prompt));
      gallery.appendChild(figure);
    });
    pane.querySelector("progress").remove();
    pane.querySelector(".phase").textContent = event.cached ? "From the response cache." : "Done.";
    pane.querySelector('[data-stat="latency_s"]').textContent = event.latency_s == null ? "–" : event.latency_s.toFixed(2) + " s";
    pane.querySelector('[data-stat="cost_usd"]').textContent = window.maPanes.usd(event.cost_usd);
    pane.querySelector('[data-stat="seed"]').textContent = seeds(event.images);
    pane.classList.remove("streaming", "waiting");
    pane.classList.add("finished");
  }

  window.maPictures = { makePane: makePane, reset: reset, apply: apply };

  var form = document.getElementById("image-form");
  if (!form || !window.maPanes) return;
  var number = function (name) { return window.maPanes.number(form, name); };
  window.maPanes.wireRun({
    prefix: "ig",
    form: form,
    panes: document.getElementById("ig-panes"),
    api: "/api/playground/image",
    working: function (models) { return "Generating with " + models.length + " model(s)…"; },
    body: function (models, prompt) {
      return {
        models: models, prompt: prompt, negative_prompt: form.elements.negative_prompt.value || null,
        size: form.elements.size.value || null, steps: number("steps"), seed: number("seed"), n: number("n") || 1
      };
    },
    makePane: makePane,
    apply: apply
  });
})();
