// The image arena: a blind battle between two image generators, a vote, the names revealed, the
// image leaderboard redrawn. The battle itself is battle.js's; this page says what it sends and
// how its panes show pictures (images.js's window.maPictures).
(function () {
  "use strict";

  var panes = document.getElementById("img-arena-panes");
  if (!panes || !window.maPanes || !window.maPictures || !window.maBattle) return;

  function resetPane(pane) {
    window.maPictures.reset(pane, pane.getAttribute("data-label"));
    pane.querySelector(".stats").hidden = true;
  }

  panes.querySelectorAll(".pane").forEach(function (pane) {
    resetPane(pane);
    pane.querySelector(".phase").textContent = "";
    pane.querySelector("progress").hidden = true;
  });
  window.maBattle.wire({
    prefix: "img-arena",
    api: "/api/arena/image",
    working: "The two models are drawing…",
    ready: "Both pictures are in: vote below.",
    body: function (form) {
      return {
        prompt: form.elements.prompt.value, model_a: form.elements.model_a.value || null,
        model_b: form.elements.model_b.value || null, size: form.elements.size.value || null,
        steps: window.maPanes.number(form, "steps"), seed: window.maPanes.number(form, "seed")
      };
    },
    apply: window.maPictures.apply,
    resetPane: resetPane,
    unjudgeable: function (root) {
      if (!root.querySelector(".pane.failed")) return "";
      return "A model failed, so this battle cannot be judged: start another.";
    }
  });
})();
