// The playground page: send one prompt to the chosen models and stream their answers side by side.
(function () {
  "use strict";

  var form = document.getElementById("playground-form");
  if (!form || !window.maPanes) return;
  var panes = document.getElementById("panes");
  var status = document.getElementById("pg-status");
  var errorBox = document.getElementById("pg-error");
  var runButton = document.getElementById("pg-run");
  var stopButton = document.getElementById("pg-stop");
  var controller = null;
  var attached = window.maImages ? window.maImages.attach(document.getElementById("pg-image-box")) : null;

  function chosenModels() {
    var picked = [];
    form.querySelectorAll("select[name=model]").forEach(function (select) {
      if (select.value) picked.push(select.value);
    });
    return picked;
  }

  function showError(message) { window.maPanes.showError(errorBox, message); }
  function busy(on) { window.maPanes.busy(runButton, stopButton, panes, on); }

  function run(event) {
    event.preventDefault();
    var models = chosenModels();
    var prompt = form.elements.prompt.value;
    showError("");
    if (!models.length) { showError("Pick at least one model."); return; }
    if (!prompt.trim()) { showError("Write a prompt first."); form.elements.prompt.focus(); return; }
    panes.textContent = "";
    panes.className = "panes panes-" + models.length;
    models.forEach(function (id, i) { panes.appendChild(window.maPanes.makePane(i, id)); });
    var body = {
      models: models,
      prompt: prompt,
      system: form.elements.system.value || null,
      temperature: parseFloat(form.elements.temperature.value || "0.7"),
      max_tokens: parseInt(form.elements.max_tokens.value || "256", 10),
      images: attached ? attached.images() : []
    };
    var started = performance.now();
    controller = new AbortController();
    busy(true);
    status.textContent = "Streaming the answers of " + models.length + " model(s)…";
    window.maPanes.stream("/api/playground/stream", body, function (e) {
      window.maPanes.apply(panes, e);
    }, controller.signal).then(function () {
      status.textContent = "Done in " + ((performance.now() - started) / 1000).toFixed(1) + " s.";
    }, function (err) {
      window.maPanes.settle(panes);
      if (err.name === "AbortError") { status.textContent = "Stopped."; return; }
      status.textContent = "";
      showError(err.message);
    }).then(function () { busy(false); controller = null; });
  }

  form.addEventListener("submit", run);
  stopButton.addEventListener("click", function () { if (controller) controller.abort(); });
})();
