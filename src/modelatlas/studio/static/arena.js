// The arena page: a blind battle between two models, a vote, the names revealed, the leaderboard.
(function () {
  "use strict";

  var form = document.getElementById("arena-form");
  if (!form || !window.maPanes) return;
  var panes = document.getElementById("arena-panes");
  var status = document.getElementById("arena-status");
  var errorBox = document.getElementById("arena-error");
  var voteBox = document.getElementById("arena-vote");
  var result = document.getElementById("arena-result");
  var startButton = document.getElementById("arena-start");
  var battle = null;
  var attached = window.maImages ? window.maImages.attach(document.getElementById("arena-image-box")) : null;
  var WORDS = { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both are bad" };

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function reset() {
    panes.querySelectorAll(".pane").forEach(window.maPanes.resetPane);
    panes.querySelectorAll(".stats").forEach(function (dl) { dl.hidden = true; });
    panes.querySelectorAll("[data-reveal]").forEach(function (span) { span.textContent = ""; });
    voteBox.disabled = true;
    result.textContent = "";
    showError("");
    battle = null;
  }

  function start(event) {
    event.preventDefault();
    var prompt = form.elements.prompt.value;
    if (!prompt.trim()) { showError("Write a prompt first."); form.elements.prompt.focus(); return; }
    reset();
    startButton.disabled = true;
    status.textContent = "The two models are answering…";
    var body = {
      prompt: prompt,
      model_a: form.elements.model_a.value || null,
      model_b: form.elements.model_b.value || null,
      max_tokens: parseInt(form.elements.max_tokens.value || "96", 10),
      images: attached ? attached.images() : []
    };
    window.maPanes.stream("/api/arena/battle", body, function (e) {
      if (e.type === "start") battle = e.battle;
      else window.maPanes.apply(panes, e);
    }).then(function () {
      status.textContent = "Both answers are in: vote below.";
      voteBox.disabled = false;
      voteBox.querySelector("button").focus();
    }, function (err) {
      window.maPanes.settle(panes);
      status.textContent = "";
      showError(err.message);
    }).then(function () { startButton.disabled = false; });
  }

  function vote(winner) {
    if (!battle) return;
    voteBox.disabled = true;
    fetch("/api/arena/vote", {
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
      span.textContent = "";
      var strong = document.createElement("strong");
      strong.textContent = name;
      span.appendChild(document.createTextNode("· "));
      span.appendChild(strong);
    });
    panes.querySelectorAll(".stats").forEach(function (dl) { dl.hidden = false; });
    result.textContent = "Vote stored (" + WORDS[data.winner] + "). A was " + data.model_a +
      ", B was " + data.model_b + ".";
    result.setAttribute("tabindex", "-1");
    result.focus();  // the vote buttons are disabled now: keep the keyboard user's place
  }

  form.addEventListener("submit", start);
  voteBox.querySelectorAll("[data-winner]").forEach(function (button) {
    button.addEventListener("click", function () { vote(button.getAttribute("data-winner")); });
  });
  var initial = document.getElementById("arena-board-data");
  if (initial) window.maBoard.chart(JSON.parse(initial.textContent));
})();
