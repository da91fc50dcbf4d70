// The image arena: a blind battle between two image generators, a vote, the names revealed, the
// image leaderboard redrawn.
(function () {
  "use strict";

  var form = document.getElementById("img-arena-form");
  if (!form || !window.maPanes || !window.maPictures) return;
  var panes = document.getElementById("img-arena-panes");
  var status = document.getElementById("img-arena-status");
  var errorBox = document.getElementById("img-arena-error");
  var voteBox = document.getElementById("img-arena-vote");
  var result = document.getElementById("img-arena-result");
  var startButton = document.getElementById("img-arena-start");
  var battle = null;
  var WORDS = { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both are bad" };

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function reset() {
    panes.querySelectorAll(".pane").forEach(function (pane) {
      window.maPictures.reset(pane, pane.getAttribute("data-label"));
      pane.querySelector(".stats").hidden = true;
    });
    panes.querySelectorAll("[data-reveal]").forEach(function (span) { span.textContent = ""; });
    voteBox.disabled = true;
    result.textContent = "";
    showError("");
    battle = null;
  }

  function number(name) {
    var value = form.elements[name].value;
    return value === "" ? null : parseInt(value, 10);
  }

  function start(event) {
    event.preventDefault();
    var prompt = form.elements.prompt.value;
    if (!prompt.trim()) { showError("Write a prompt first."); form.elements.prompt.focus(); return; }
    reset();
    startButton.disabled = true;
    status.textContent = "The two models are drawing…";
    var body = {
      prompt: prompt, model_a: form.elements.model_a.value || null, model_b: form.elements.model_b.value || null,
      size: form.elements.size.value || null, steps: number("steps"), seed: number("seed")
    };
    window.maPanes.stream("/api/arena/image/battle", body, function (e) {
      if (e.type === "start") battle = e.battle;
      else window.maPictures.apply(panes, e);
    }).then(function () {
      if (panes.querySelector(".pane.failed")) {
        status.textContent = "A model failed, so this battle cannot be judged: start another.";
        return;
      }
      status.textContent = "Both pictures are in: vote below.";
      voteBox.disabled = false;
      voteBox.querySelector("button").focus();
    }, function (err) {
      status.textContent = "";
      showError(err.message);
    }).then(function () { startButton.disabled = false; });
  }

  function vote(winner) {
    if (!battle) return;
    voteBox.disabled = true;
    fetch("/api/arena/image/vote", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ battle: battle, winner: winner })
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) throw new Error(data.error || "The vote was not stored.");
        return data;
      });
    }).then(function (data) {
      battle = null;
      reveal(data);
      window.maBoard.draw(data.leaderboard);
    }, function (err) {
      voteBox.disabled = false;
      showError(err.message);
    });
  }

  function reveal(data) {
    [data.model_a, data.model_b].forEach(function (name, i) {
      var span = panes.querySelector('[data-reveal="' + i + '"]');
      span.textContent = "· ";
      var strong = document.createElement("strong");
      strong.textContent = name;
      span.appendChild(strong);
    });
    panes.querySelectorAll(".stats").forEach(function (dl) { dl.hidden = false; });
    result.textContent = "Vote stored (" + WORDS[data.winner] + "). A was " + data.model_a + ", B was " + data.model_b + ".";
    result.setAttribute("tabindex", "-1");
    result.focus();
  }

  panes.querySelectorAll(".pane").forEach(function (pane) {
    window.maPictures.reset(pane, pane.getAttribute("data-label"));
    pane.querySelector(".stats").hidden = true;
    pane.querySelector(".phase").textContent = "";
    pane.querySelector("progress").hidden = true;
  });
  form.addEventListener("submit", start);
  voteBox.querySelectorAll("[data-winner]").forEach(function (button) {
    button.addEventListener("click", function () { vote(button.getAttribute("data-winner")); });
  });
  var initial = document.getElementById("arena-board-data");
  if (initial) window.maBoard.chart(JSON.parse(initial.textContent));
})();
