// The analytics dashboard's charts (/console/analytics), drawn with the vendored Chart.js.
// The figures arrive in a JSON data block on the page (not executed, so the console's
// Content-Security-Policy allows it); every chart also has a data table in the HTML.
// Labels are set as text by Chart.js and by textContent here, never as HTML.
(function () {
  "use strict";

  const PALETTE = [
    "#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed",
    "#0891b2", "#db2777", "#65a30d",
  ];

  function readJson(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent || "null") : null;
  }

  function base(extra) {
    return Object.assign(
      {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { position: "bottom" } },
      },
      extra || {}
    );
  }

  function percentAxis() {
    return {
      beginAtZero: true,
      ticks: { callback: (value) => `${Math.round(value * 100)} %` },
    };
  }

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas) return null;
    return new window.Chart(canvas, config);
  }

  function start() {
    const data = readJson("analytics-data");
    const labels = readJson("analytics-labels") || { reasons: {} };
    if (!data || typeof window.Chart === "undefined") return;
    const charts = {};
    const days = data.period.days.map((d) => d.slice(5));

    charts.daily = draw("chart-daily", {
      type: "bar",
      data: {
        labels: days,
        datasets: [
          {
            label: "Conversations 会话",
            data: data.conversations_per_day.map((r) => r.conversations),
            backgroundColor: PALETTE[0],
          },
          {
            label: "Contained 机器人解决",
            data: data.conversations_per_day.map((r) => r.contained),
            backgroundColor: PALETTE[2],
          },
          {
            label: "Handed off 转人工",
            data: data.conversations_per_day.map((r) => r.handed_off),
            backgroundColor: PALETTE[3],
          },
        ],
      },
      options: base({ scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
    });

    charts.reasons = draw("chart-reasons", {
      type: "bar",
      data: {
        labels: data.handoff.by_reason.map((r) => labels.reasons[r.reason] || r.reason),
        datasets: [
          {
            label: "Share of engaged conversations 占有发言会话",
            data: data.handoff.by_reason.map((r) => r.rate),
            backgroundColor: PALETTE[3],
          },
        ],
      },
      options: base({
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: percentAxis() },
      }),
    });

    charts.intents = draw("chart-intents", {
      type: "line",
      data: {
        labels: days,
        datasets: data.intents.trend.series.map((s, i) => ({
          label: s.intent,
          data: s.counts,
          borderColor: PALETTE[i % PALETTE.length],
          backgroundColor: PALETTE[i % PALETTE.length],
          tension: 0.2,
        })),
      },
      options: base({ scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }),
    });

    charts.csat = draw("chart-csat", {
      type: "bar",
      data: {
        labels: data.satisfaction.distribution.map((r) => `${r.score} ★`),
        datasets: [
          {
            label: "Answers 人数",
            data: data.satisfaction.distribution.map((r) => r.count),
            backgroundColor: ["#dc2626", "#f97316", "#eab308", "#84cc16", "#16a34a"],
          },
        ],
      },
      options: base({
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      }),
    });

    const edges = data.confidence.edges;
    const binLabels = edges.slice(0, -1).map((e, i) => `${e.toFixed(1)}–${edges[i + 1].toFixed(1)}`);
    const select = document.getElementById("confidence-intent");
    const byIntent = new Map(data.confidence.by_intent.map((r) => [r.intent, r.counts]));
    const first = data.confidence.by_intent.length ? data.confidence.by_intent[0] : null;
    charts.confidence = draw("chart-confidence", {
      type: "bar",
      data: {
        labels: binLabels,
        datasets: [
          {
            label: first ? first.intent : "",
            data: first ? first.counts : [],
            backgroundColor: PALETTE[4],
          },
        ],
      },
      options: base({
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      }),
    });
    if (select && charts.confidence) {
      select.addEventListener("change", () => {
        const dataset = charts.confidence.data.datasets[0];
        dataset.label = select.value;
        dataset.data = byIntent.get(select.value) || [];
        charts.confidence.update();
      });
    }

    window.kefuAnalytics = charts; // for the browser test and the curious
    document.body.dataset.chartsReady = String(Object.values(charts).filter(Boolean).length);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
