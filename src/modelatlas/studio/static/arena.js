// The arena page: a blind battle between two models, a vote, the names revealed, the leaderboard.
// The battle itself is battle.js's; this page says what it sends and how its panes show answers.
(function () {
  "use strict";

  if (!document.getElementById("arena-form") || !window.maPanes || !window.maBattle) return;
  var attached = window.maImages ? window.maImages.attach(document.getElementById("arena-image-box")) : null;

  window.maBattle.wire({
    prefix: "arena",
    api: "/api/arena",
    working: "The two models are answering…",
    ready: "Both answers are in: vote below.",
    body: function (form) {
      return {
        prompt: form.elements.prompt.value,
        model_a: form.elements.model_a.value || null,
        model_b: form.elements.model_b.value || null,
        max_tokens: parseInt(form.elements.max_tokens.value || "96", 10),
        images: attached ? attached.images() : []
      };
    },
    apply: window.maPanes.apply,
    resetPane: function (pane) {
      window.maPanes.resetPane(pane);
      pane.querySelector(".stats").hidden = true;
    },
    stopped: window.maPanes.settle
  });
})();
