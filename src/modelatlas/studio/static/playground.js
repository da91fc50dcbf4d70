// The playground page: send one prompt to the chosen models and stream their answers side by side.
// The run itself (panes, stream, Stop) is panes.js's wireRun; this page says what it sends.
(function () {
  "use strict";

  var form = document.getElementById("playground-form");
  if (!form || !window.maPanes) return;
  var attached = window.maImages ? window.maImages.attach(document.getElementById("pg-image-box")) : null;
  var kindsData = document.getElementById("pg-kinds");
  var kinds = kindsData ? JSON.parse(kindsData.textContent) : {};  // model id: its kind labels

  window.maPanes.wireRun({
    prefix: "pg",
    form: form,
    panes: document.getElementById("panes"),
    api: "/api/playground/stream",
    working: function (models) { return "Streaming the answers of " + models.length + " model(s)…"; },
    body: function (models, prompt) {
      return {
        models: models,
        prompt: prompt,
        system: form.elements.system.value || null,
        temperature: parseFloat(form.elements.temperature.value || "0.7"),
        max_tokens: parseInt(form.elements.max_tokens.value || "256", 10),
        images: attached ? attached.images() : []
      };
    },
    makePane: function (index, id) {
      var pane = window.maPanes.makePane(index, id);
      window.maPanes.labelKinds(pane, kinds[id]);
      return pane;
    },
    apply: window.maPanes.apply,
    stopped: window.maPanes.settle
  });
})();
