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
      max_tokens: parseInt(form.elements.max_tokens.value || "96", 10)
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
      drawBoard(data.leaderboard);
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

  function cell(row, text, numeric) {
    var td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    row.appendChild(td);
  }

  function drawBoard(board) {
    var body = document.querySelector("#arena-board tbody");
    body.textContent = "";
    board.forEach(function (r) {
      var row = document.createElement("tr");
      row.setAttribute("data-model", r.model);
      cell(row, String(r.rank), true);
      cell(row, r.model, false);
      cell(row, String(Math.round(r.rating)), true);
      cell(row, Math.round(r.ci_low) + " – " + Math.round(r.ci_high), true);
      [r.games, r.wins, r.losses, r.ties].forEach(function (n) { cell(row, String(n), true); });
      body.appendChild(row);
    });
    document.getElementById("arena-empty").hidden = board.length > 0;
    document.getElementById("arena-board-wrap").hidden = board.length === 0;
    drawChart(board);
  }

  function drawChart(board) {
    var el = document.getElementById("arena-chart");
    if (!window.Plotly || !el || !board.length) return;
    var rows = board.slice().reverse();
    var trace = {
      type: "scatter", mode: "markers", orientation: "h",
      x: rows.map(function (r) { return r.rating; }),
      y: rows.map(function (r) { return r.model; }),
      error_x: {
        type: "data", symmetric: false,
        array: rows.map(function (r) { return r.ci_high - r.rating; }),
        arrayminus: rows.map(function (r) { return r.rating - r.ci_low; })
      },
      hovertemplate: "%{y}: %{x:.0f}<extra></extra>"
    };
    el.style.height = (110 + 45 * rows.length) + "px";
    var layout = {
      margin: { t: 20, r: 20, b: 50, l: 200 }, autosize: true, height: 110 + 45 * rows.length,
      xaxis: { title: { text: "Rating (95% CI)" } }, yaxis: { automargin: true }
    };
    window.Plotly.react(el, [trace], layout, { displaylogo: false, responsive: true });
  }

  form.addEventListener("submit", start);
  voteBox.querySelectorAll("[data-winner]").forEach(function (button) {
    button.addEventListener("click", function () { vote(button.getAttribute("data-winner")); });
  });
  var initial = document.getElementById("arena-board-data");
  if (initial) drawChart(JSON.parse(initial.textContent));
})();
