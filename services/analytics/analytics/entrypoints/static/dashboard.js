// Turnout analytics dashboard: draws the charts (Chart.js, when it is there)
// from the JSON each page embeds, and keeps the live view up to date over
// Server-Sent Events. Every chart has a table beside it; without Chart.js the
// tables are all there is, opened.
(function () {
  "use strict";

  var KIND_COLORS = {
    volunteer_shift: "#0f766e", networking: "#b45309", workshop: "#6d28d9", meeting: "#0369a1", other: "#64748b"
  };
  var KIND_LABELS = {
    volunteer_shift: "Volunteer shift", networking: "Networking", workshop: "Workshop", meeting: "Meeting", other: "Other"
  };
  var charts = {};

  function json(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function signed(value) { return value > 0 ? "+" + value : String(value); }

  function baseOptions(extra) {
    var options = {
      responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: { position: "bottom", labels: { boxWidth: 14 } } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
    };
    return Object.assign(options, extra || {});
  }

  function arrivalsConfig(points) {
    return {
      type: "bar",
      data: {
        labels: points.map(function (p) { return signed(p.minutes) + " min"; }),
        datasets: [
          { type: "bar", label: "Arrivals per 5 minutes", data: points.map(function (p) { return p.arrivals; }),
            backgroundColor: "#14b8a6", yAxisID: "y" },
          { type: "line", label: "Checked in so far", data: points.map(function (p) { return p.cumulative; }),
            borderColor: "#b45309", backgroundColor: "#b45309", pointRadius: 0, tension: 0.2, yAxisID: "y2" }
        ]
      },
      options: baseOptions({
        scales: {
          x: { title: { display: true, text: "Minutes from the start" } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "Arrivals" } },
          y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, ticks: { precision: 0 },
                title: { display: true, text: "Total" } }
        }
      })
    };
  }

  function trendConfig(points) {
    var months = [], kinds = [];
    points.forEach(function (p) {
      if (months.indexOf(p.month) < 0) months.push(p.month);
      if (kinds.indexOf(p.kind) < 0) kinds.push(p.kind);
    });
    return {
      type: "bar",
      data: {
        labels: months,
        datasets: kinds.map(function (kind) {
          return {
            label: KIND_LABELS[kind] || kind, backgroundColor: KIND_COLORS[kind] || "#64748b",
            data: months.map(function (m) {
              var found = points.filter(function (p) { return p.month === m && p.kind === kind; })[0];
              return found ? found.checked_in : 0;
            })
          };
        })
      },
      options: baseOptions({ scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 },
        title: { display: true, text: "Check-ins" } } } })
    };
  }

  function retentionConfig(data) {
    var values = (data.average || []).slice(1);
    return {
      type: "line",
      data: {
        labels: values.map(function (_, i) { return "+" + (i + 1) + " mo"; }),
        datasets: [{ label: "Came back in that month (all cohorts)", data: values.map(function (v) { return v === null ? null : Math.round(v * 100); }),
          borderColor: "#0f766e", backgroundColor: "#0f766e", spanGaps: false, tension: 0.2 }]
      },
      options: baseOptions({ scales: { y: { beginAtZero: true, max: 100, ticks: { callback: function (v) { return v + "%"; } } } } })
    };
  }

  function funnelConfig(data) {
    var kinds = data.kinds || [];
    var stages = [["sent", "Sent", "#94a3b8"], ["opened", "Opened", "#5eead4"], ["clicked", "Clicked", "#14b8a6"],
                  ["came_back", "Came to a later event", "#b45309"]];
    return {
      type: "bar",
      data: {
        labels: kinds.map(function (k) { return k.label || k.nudge_kind; }),
        datasets: stages.map(function (s) {
          return { label: s[1], backgroundColor: s[2], data: kinds.map(function (k) { return k[s[0]]; }) };
        })
      },
      options: baseOptions({ indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } })
    };
  }

  function splitConfig(data) {
    return {
      type: "doughnut",
      data: { labels: data.labels, datasets: [{ data: data.values, backgroundColor: ["#14b8a6", "#b45309", "#94a3b8"] }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, plugins: { legend: { position: "bottom" } } }
    };
  }

  function seriesConfig(data) {
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Registered", backgroundColor: "#cbd5e1", data: data.registered },
          { label: "Checked in", backgroundColor: "#0f766e", data: data.checked_in }
        ]
      },
      options: baseOptions({ scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } })
    };
  }

  var BUILDERS = { arrivals: arrivalsConfig, trend: trendConfig, retention: retentionConfig, funnel: funnelConfig, split: splitConfig, series: seriesConfig };

  function draw(canvas) {
    var data = json(canvas.dataset.source);
    var build = BUILDERS[canvas.dataset.chart];
    if (!build || data === null) return;
    charts[canvas.id] = new window.Chart(canvas, build(data));
  }

  function cell(row, text, numeric) {
    var td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    row.appendChild(td);
  }

  function fillBody(id, rows, render) {
    var body = document.getElementById(id);
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    rows.forEach(function (item) {
      var tr = document.createElement("tr");
      render(tr, item);
      body.appendChild(tr);
    });
  }

  function percent(value) { return value === null || value === undefined ? "—" : Math.round(value * 100) + "%"; }

  function showLive(snapshot) {
    document.querySelectorAll("[data-field]").forEach(function (node) {
      var name = node.dataset.field;
      if (!(name in snapshot)) return;
      node.textContent = name === "show_rate" ? percent(snapshot[name]) : Number(snapshot[name]).toLocaleString("en-US");
    });
    fillBody("arrivals-body", snapshot.arrivals, function (tr, p) {
      cell(tr, p.label); cell(tr, p.arrivals, true); cell(tr, p.cumulative, true);
    });
    fillBody("lanes-body", snapshot.lanes, function (tr, lane) {
      cell(tr, lane.label); cell(tr, lane.checked_in, true); cell(tr, lane.peak_arrivals_5min, true);
      cell(tr, lane.peak_per_minute, true); cell(tr, lane.peak_window || "—");
    });
    var empty = document.getElementById("arrivals-empty");
    if (empty) empty.hidden = snapshot.arrivals.length > 0;
    var chart = charts["chart-arrivals"];
    if (chart) {
      var config = arrivalsConfig(snapshot.arrivals);
      chart.data.labels = config.data.labels;
      chart.data.datasets[0].data = config.data.datasets[0].data;
      chart.data.datasets[1].data = config.data.datasets[1].data;
      chart.update("none");
    }
    var stamp = document.getElementById("live-updated");
    if (stamp) stamp.textContent = new Date().toLocaleTimeString();
  }

  function connectLive(url) {
    var status = document.getElementById("live-status");
    var dot = document.getElementById("live-dot");
    var source = new EventSource(url);
    function state(text, ok) {
      if (status) status.textContent = text;
      if (dot) dot.className = ok ? "dot" : "dot off";
    }
    source.addEventListener("open", function () { state("Live", true); });
    source.addEventListener("figures", function (event) { state("Live", true); showLive(JSON.parse(event.data)); });
    source.addEventListener("reconnect", function () { source.close(); setTimeout(function () { connectLive(url); }, 50); });
    source.addEventListener("error", function () { state("Reconnecting…", false); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (window.Chart) {
      window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      window.Chart.defaults.color = "#334155";
      document.querySelectorAll("canvas[data-chart]").forEach(draw);
    } else {
      document.querySelectorAll("figure.chart").forEach(function (f) { f.hidden = true; });
      document.querySelectorAll("details.table-alt").forEach(function (d) { d.open = true; });
    }
    var live = document.body.dataset.liveUrl;
    if (live) connectLive(live);
  });
})();
