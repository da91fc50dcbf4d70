// An arena leaderboard (text or image battles): the table's rows and the rating chart, redrawn
// after a vote. Exposed as window.maBoard.draw(board) and window.maBoard.chart(board).
(function () {
  "use strict";

  function cell(row, text, numeric) {
    var td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    row.appendChild(td);
  }

  function draw(board) {
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
    chart(board);
  }

  function chart(board) {
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

  window.maBoard = { draw: draw, chart: chart };
})();
